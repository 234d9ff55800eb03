//! What a process prepares once for all the children it will fork: a dead
//! socket for them to point their clients at, and its own /proc status file,
//! open, whose FDSize bounds every fd a child inherited.
//!
//! In a fresh child, making a socketpair costs about 13 us and opening its
//! own status file about 18 us (procfs builds the new pid's entries); using
//! what the parent left open costs an fstat and a pread. Both descriptors
//! are close-on-exec, and a child checks each is still the one the parent
//! made (same device and inode) before trusting it: app code may have
//! closed them and reused their numbers. Whatever fails the check, the
//! child makes its own.

use std::os::fd::{IntoRawFd, OwnedFd, RawFd};

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::fds::{fd_size_in, Seen};
use crate::fork_lock::{ForkLock, Guard};
use crate::neutralize::dead_socket;
use crate::pid::this_process;
use crate::sys;

/// A descriptor this module opened, kept open for the process's life.
fn hold(fd: OwnedFd) -> Option<Seen> {
    Seen::now(fd.into_raw_fd())
}

fn close_if_intact(held: Seen) {
    if held.is_intact() {
        // The number is still the file this module opened.
        let _ = sys::close(held.fd);
    }
}

pub struct Kit {
    /// The process that opened `status`: a child may read it only if this
    /// is its parent. (A grandchild inherits its grandparent's kit until
    /// its parent prepares its own.)
    owner: libc::pid_t,
    status: Option<Seen>,
    dead_end: Option<Seen>,
}

/// Read by the child's pass inside fork; see `fork_lock`.
pub(crate) static KIT: ForkLock<Kit> = ForkLock::new(Kit::EMPTY);

/// In a child whose parent's kit was being changed at the fork: none.
pub(crate) fn mend_in_child() {
    KIT.mend_in_child(Kit::EMPTY);
}

impl Kit {
    const EMPTY: Kit = Kit {
        owner: 0,
        status: None,
        dead_end: None,
    };
}

fn kit() -> Guard<'static, Kit> {
    KIT.lock()
}

/// Makes the kit this process's own and whole: when the extension loads,
/// and in the parent after every fork. A child inherits its parent's kit:
/// the dead socket, if intact, is kept (dead is dead, whoever made it); the
/// status file is replaced by this process's own. Whatever app code closed
/// is opened again; what cannot be opened is left out.
pub fn prepare() {
    let pid = this_process();
    let mut kit = kit();
    if kit.owner != pid {
        kit.owner = pid;
        if let Some(parents) = kit.status.take() {
            close_if_intact(parents);
        }
    }
    if !kit.status.is_some_and(|held| held.is_intact()) {
        kit.status = open(
            "/proc/self/status",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()
        .and_then(hold);
    }
    if !kit.dead_end.is_some_and(|held| held.is_intact()) {
        kit.dead_end = dead_socket().ok().and_then(hold);
    }
}

/// In a child: the dead socket its parent left, if it is intact.
pub fn inherited_dead_end() -> Option<RawFd> {
    kit().dead_end.filter(Seen::is_intact).map(|held| held.fd)
}

/// In a child: the size of its parent's fd table now, given the parent's
/// pid. The child's table is a copy of the parent's at fork, and a table
/// never shrinks, so no fd the child inherited lies beyond it. None unless
/// the kit is its parent's.
pub fn fd_table_size_of(parent: libc::pid_t) -> Option<RawFd> {
    let kit = kit();
    let held = kit
        .status
        .filter(|_| kit.owner == parent)
        .filter(Seen::is_intact)?;
    fd_size_in(held.fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fds::open_fds;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_held_descriptor_notices_its_number_reused() {
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        let held = hold(reader).unwrap();
        assert!(held.is_intact());
        let other = std::fs::File::open("/dev/null").unwrap();
        // Onto a number this test owns.
        sys::dup3(other.as_raw_fd(), held.fd, OFlag::empty()).unwrap();
        assert!(!held.is_intact());
        close_if_intact(held);
        // Not ours any more: it was left open.
        assert!(open_fds().contains(&held.fd));
        // The test's own copy of /dev/null.
        let _ = sys::close(held.fd);
    }

    #[test]
    fn prepares_once_per_process_and_mends_what_was_closed() {
        prepare();
        let (status, dead_end) = {
            let kit = kit();
            (kit.status.unwrap(), kit.dead_end.unwrap())
        };
        prepare();
        assert_eq!(kit().status, Some(status));
        assert_eq!(inherited_dead_end(), Some(dead_end.fd));
        // The kit is this process's, for its own children only.
        assert!(fd_table_size_of(std::process::id() as libc::pid_t).is_some());
        assert_eq!(fd_table_size_of(1), None);

        // The kit's own descriptor, as app code might close it.
        let _ = sys::close(dead_end.fd);
        assert_eq!(inherited_dead_end(), None);
        prepare();
        assert!(inherited_dead_end().is_some());
        assert_eq!(kit().status, Some(status));
    }
}
