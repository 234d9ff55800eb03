//! The two acts on a socket.
//!
//! `DeadEnd::install_over` ends *this process's* reference to a connection:
//! the kernel tears a connection down (FIN, the peer's EOF) when its last
//! reference goes, so a forked child that drops its reference no longer
//! keeps the client waiting. The fd number stays valid, pointing at a dead
//! socket, because Ruby IO objects in the child still own that number and
//! would close whatever reused it.
//!
//! `shutdown_both` ends *the connection*, for every process holding it:
//! the peer gets EOF at once however many references remain.

use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::socket::{shutdown, socketpair, AddressFamily, Shutdown, SockFlag, SockType};
use nix::sys::stat::Mode;

use crate::fds::cloexec;
use crate::sys::{self, dup3};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeadEndKind {
    /// A socketpair end shut down both ways: reads give EOF, writes EPIPE,
    /// accept EINVAL.
    Socket,
    /// No socket could be made: /dev/null (reads EOF, writes vanish).
    DevNull,
    /// The descriptor table was full: the first target's own slot was
    /// closed and reopened on /dev/null, and serves the others.
    Vacated,
}

impl DeadEndKind {
    pub fn name(self) -> &'static str {
        match self {
            DeadEndKind::Socket => "socket",
            DeadEndKind::DevNull => "devnull",
            DeadEndKind::Vacated => "vacated",
        }
    }
}

pub struct DeadEnd {
    fd: RawFd,
    kind: DeadEndKind,
    /// Closed on drop; not when it was vacated into a target's slot, nor
    /// when it is someone else's (a dead socket the parent left).
    owned: bool,
}

impl DeadEnd {
    pub fn new() -> Result<Self, Errno> {
        match dead_socket() {
            Ok(fd) => Ok(Self::owning(fd, DeadEndKind::Socket)),
            Err(_) => Ok(Self::owning(
                dev_null(OFlag::O_CLOEXEC)?,
                DeadEndKind::DevNull,
            )),
        }
    }

    /// The last resort when `new` fails for want of a descriptor: `fd`,
    /// a descriptor about to be neutralized anyway, gives up its slot.
    /// With the table full, the slot it frees is the only one, so /dev/null
    /// lands on the same number; the dead end then lives there for good.
    pub fn in_place_of(fd: RawFd) -> Result<Self, Errno> {
        let cloexec = cloexec_flag(cloexec(fd)?);
        // The caller hands over `fd`; nothing else uses it in here.
        let _ = sys::close(fd);
        let null = dev_null(cloexec)?;
        if null.as_raw_fd() == fd {
            // Ours from now on: dropping `null` would empty the slot again.
            let _ = null.into_raw_fd();
        } else {
            // Another slot was free after all: move it to `fd`'s number.
            dup3(null.as_raw_fd(), fd, cloexec)?;
        }
        Ok(Self {
            fd,
            kind: DeadEndKind::Vacated,
            owned: false,
        })
    }

    /// A dead socket that outlives this pass: it is not closed after.
    pub fn shared(fd: RawFd) -> Self {
        Self {
            fd,
            kind: DeadEndKind::Socket,
            owned: false,
        }
    }

    fn owning(fd: OwnedFd, kind: DeadEndKind) -> Self {
        Self {
            fd: fd.into_raw_fd(),
            kind,
            owned: true,
        }
    }

    pub fn kind(&self) -> DeadEndKind {
        self.kind
    }

    /// Points `fd` at the dead end, keeping its number and FD_CLOEXEC.
    /// dup3 closes the old description's reference atomically.
    pub fn install_over(&self, fd: RawFd) -> Result<(), Errno> {
        if fd == self.fd {
            return Ok(());
        }
        dup3(self.fd, fd, cloexec_flag(cloexec(fd)?))
    }
}

impl Drop for DeadEnd {
    fn drop(&mut self) {
        if self.owned {
            // This dead end opened fd and nothing else closes it.
            let _ = sys::close(self.fd);
        }
    }
}

/// shutdown(SHUT_RDWR); a socket whose peer is already gone (ENOTCONN)
/// counts as done.
pub fn shutdown_both(fd: RawFd) -> Result<(), Errno> {
    match shutdown(fd, Shutdown::Both) {
        Ok(()) | Err(Errno::ENOTCONN) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A socket that reads EOF, fails writes with EPIPE and accepts nothing:
/// one end of a socketpair, shut down both ways, whose peer is closed.
pub fn dead_socket() -> Result<OwnedFd, Errno> {
    let (end, peer) = socketpair(
        AddressFamily::Unix,
        SockType::Stream,
        None,
        SockFlag::SOCK_CLOEXEC,
    )?;
    shutdown(end.as_raw_fd(), Shutdown::Both)?;
    drop(peer);
    Ok(end)
}

fn dev_null(flags: OFlag) -> Result<OwnedFd, Errno> {
    open("/dev/null", OFlag::O_RDWR | flags, Mode::empty())
}

fn cloexec_flag(cloexec: bool) -> OFlag {
    if cloexec {
        OFlag::O_CLOEXEC
    } else {
        OFlag::empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{recv, send, MsgFlags};

    fn pair() -> (OwnedFd, OwnedFd) {
        socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::empty(),
        )
        .unwrap()
    }

    fn read_byte(fd: RawFd) -> Result<usize, Errno> {
        recv(fd, &mut [0u8; 1], MsgFlags::MSG_DONTWAIT)
    }

    #[test]
    fn neutralized_fd_reads_eof_and_writes_epipe_not_the_old_stream() {
        let (ours, theirs) = pair();
        send(theirs.as_raw_fd(), b"secret", MsgFlags::empty()).unwrap();
        DeadEnd::new()
            .unwrap()
            .install_over(ours.as_raw_fd())
            .unwrap();

        assert_eq!(
            read_byte(ours.as_raw_fd()),
            Ok(0),
            "no byte of the old stream"
        );
        assert_eq!(
            send(ours.as_raw_fd(), b"x", MsgFlags::MSG_NOSIGNAL),
            Err(Errno::EPIPE)
        );
        // Our reference was the last and "secret" went unread: like TCP's
        // RST, the kernel tells the peer the connection was reset.
        assert_eq!(read_byte(theirs.as_raw_fd()), Err(Errno::ECONNRESET));
    }

    #[test]
    fn neutralizing_the_last_other_reference_gives_the_peer_eof() {
        let (ours, theirs) = pair();
        let dead = DeadEnd::new().unwrap();
        assert_eq!(dead.kind(), DeadEndKind::Socket);
        dead.install_over(ours.as_raw_fd()).unwrap();
        assert_eq!(read_byte(theirs.as_raw_fd()), Ok(0));
        assert!(
            crate::fds::is_open(ours.as_raw_fd()),
            "the number stays valid"
        );
    }

    #[test]
    fn install_over_preserves_close_on_exec_either_way() {
        let dead = DeadEnd::new().unwrap();
        let (plain, _a) = pair();
        let (flagged, _b) = socketpair(
            AddressFamily::Unix,
            SockType::Stream,
            None,
            SockFlag::SOCK_CLOEXEC,
        )
        .unwrap();
        dead.install_over(plain.as_raw_fd()).unwrap();
        dead.install_over(flagged.as_raw_fd()).unwrap();
        assert_eq!(cloexec(plain.as_raw_fd()), Ok(false));
        assert_eq!(cloexec(flagged.as_raw_fd()), Ok(true));
    }

    #[test]
    fn install_over_a_closed_fd_is_ebadf() {
        let dead = DeadEnd::new().unwrap();
        let (a, _b) = pair();
        let fd = a.as_raw_fd();
        drop(a);
        // The number may be reused by a parallel test; only check when free.
        if !crate::fds::is_open(fd) {
            assert_eq!(dead.install_over(fd), Err(Errno::EBADF));
        }
    }

    #[test]
    fn shutdown_gives_eof_while_another_reference_lives() {
        let (ours, theirs) = pair();
        // The copy stands for a forked child's.
        let copy = ours.try_clone().unwrap();
        shutdown_both(ours.as_raw_fd()).unwrap();
        assert_eq!(read_byte(theirs.as_raw_fd()), Ok(0));
        assert!(copy.as_raw_fd() >= 0);
        // Shutting down twice, or a dead connection, is not an error.
        shutdown_both(ours.as_raw_fd()).unwrap();
    }

    #[test]
    fn shutdown_of_a_non_socket_is_enotsock() {
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        assert_eq!(shutdown_both(reader.as_raw_fd()), Err(Errno::ENOTSOCK));
    }
}
