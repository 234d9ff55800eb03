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
//! child makes its own as before.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

use crate::fds::fd_size_in;
use crate::neutralize::dead_socket;

/// A descriptor this module opened, and the file it was opened on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Held {
    fd: RawFd,
    dev: u64,
    ino: u64,
}

impl Held {
    fn hold(fd: OwnedFd) -> Option<Self> {
        let (dev, ino) = identity(fd.as_raw_fd())?;
        Some(Self {
            fd: fd.into_raw_fd(),
            dev,
            ino,
        })
    }

    /// Still open on the same file: nobody closed it and reused the number.
    fn is_intact(&self) -> bool {
        identity(self.fd) == Some((self.dev, self.ino))
    }

    fn close_if_intact(self) {
        if self.is_intact() {
            // SAFETY: the number is still the file this module opened.
            unsafe { libc::close(self.fd) };
        }
    }
}

/// The device and inode of the file `fd` is open on.
fn identity(fd: RawFd) -> Option<(u64, u64)> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: fstat writes one struct stat, read only when it succeeded.
    let stat = unsafe { (libc::fstat(fd, stat.as_mut_ptr()) == 0).then(|| stat.assume_init()) }?;
    Some((stat.st_dev as u64, stat.st_ino as u64))
}

pub struct Kit {
    /// The process that opened `status`: a child may read it only if this
    /// is its parent. (A grandchild inherits its grandparent's kit until
    /// its parent prepares its own.)
    owner: libc::pid_t,
    status: Option<Held>,
    dead_end: Option<Held>,
}

/// Used with Ruby's GVL held, as the ledger is: no thread holds it at fork.
static KIT: Mutex<Kit> = Mutex::new(Kit {
    owner: 0,
    status: None,
    dead_end: None,
});

fn kit() -> std::sync::MutexGuard<'static, Kit> {
    KIT.lock().unwrap_or_else(|e| e.into_inner())
}

/// Makes the kit this process's own and whole: when the extension loads,
/// and in the parent after every fork. A child inherits its parent's kit:
/// the dead socket, if intact, is kept (dead is dead, whoever made it); the
/// status file is replaced by this process's own. Whatever app code closed
/// is opened again; what cannot be opened is left out.
pub fn prepare() {
    let pid = std::process::id() as libc::pid_t;
    let mut kit = kit();
    if kit.owner != pid {
        kit.owner = pid;
        if let Some(parents) = kit.status.take() {
            parents.close_if_intact();
        }
    }
    if !kit.status.is_some_and(|held| held.is_intact()) {
        kit.status = open(
            "/proc/self/status",
            OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .ok()
        .and_then(Held::hold);
    }
    if !kit.dead_end.is_some_and(|held| held.is_intact()) {
        kit.dead_end = dead_socket().ok().and_then(Held::hold);
    }
}

/// In a child: the dead socket its parent left, if it is intact.
pub fn inherited_dead_end() -> Option<RawFd> {
    kit().dead_end.filter(Held::is_intact).map(|held| held.fd)
}

/// In a child: the size of its parent's fd table now. The child's table is
/// a copy of the parent's at fork, and a table never shrinks, so no fd the
/// child inherited lies beyond it. None unless the kit is its parent's.
pub fn parent_fd_table_size() -> Option<RawFd> {
    let kit = kit();
    // SAFETY: getppid has no arguments and cannot fail.
    let held = kit
        .status
        .filter(|_| kit.owner == unsafe { libc::getppid() })
        .filter(Held::is_intact)?;
    fd_size_in(held.fd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fds::open_fds;

    #[test]
    fn a_held_descriptor_notices_its_number_reused() {
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        let held = Held::hold(reader).unwrap();
        assert!(held.is_intact());
        let other = std::fs::File::open("/dev/null").unwrap();
        // SAFETY: dup2 onto a number this test owns.
        assert_eq!(unsafe { libc::dup2(other.as_raw_fd(), held.fd) }, held.fd);
        assert!(!held.is_intact());
        held.close_if_intact();
        // Not ours any more: it was left open.
        assert!(open_fds().contains(&held.fd));
        // SAFETY: the test's own copy of /dev/null.
        unsafe { libc::close(held.fd) };
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
        // This test process is no child of its own kit's owner.
        assert_eq!(parent_fd_table_size(), None);

        // SAFETY: the kit's own descriptor, as app code might close it.
        unsafe { libc::close(dead_end.fd) };
        assert_eq!(inherited_dead_end(), None);
        prepare();
        assert!(inherited_dead_end().is_some());
        assert_eq!(kit().status, Some(status));
    }
}
