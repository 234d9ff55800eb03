//! Every raw call the crate makes into the C library, each behind a small
//! safe wrapper: the other modules hold no `unsafe` and call no `libc`
//! function (nix's safe ones, yes).
//!
//! Each `unsafe` block below says why it is sound: what memory the kernel
//! reads or writes, and that it is ours, whole, for the length of the call.
//! What std or nix offers safely on a bare number is called through them
//! (`getpid`, `close`); nix's calls that want a borrowed descriptor (fstat,
//! fcntl, pread, dup3, getsockopt) would need `unsafe` to borrow one from a
//! number, so those are made here directly.
//!
//! Descriptors are plain numbers, as in the rest of the crate: a number may
//! name no file, or another file than it did (see `fds::Seen`), and the
//! kernel then answers EBADF, or answers for that file, without touching
//! memory of ours. The calls that close or replace a descriptor (`close`,
//! `dup3`) take a number the caller owns, as nix's close does: which
//! numbers are whose is the business of the modules that call them.
//!
//! Nothing here allocates: the child's pass makes these calls inside fork,
//! once per descriptor.

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::fcntl::OFlag;

/// poll(2) over `slots`, waiting for nothing (a zero timeout): the number
/// of slots with `revents` set, POLLNVAL for each number with no file.
pub fn poll_slots(slots: &mut [libc::pollfd]) -> Result<usize, Errno> {
    // SAFETY: `slots` is an exclusively borrowed array of `slots.len()`
    // pollfds; the kernel reads each and writes only its `revents`, and,
    // with a zero timeout, returns before the borrow ends.
    let n = unsafe { libc::poll(slots.as_mut_ptr(), slots.len() as libc::nfds_t, 0) };
    Errno::result(n).map(|n| n as usize)
}

/// pread(2): reads into `buf` from `offset`, leaving the file's offset as
/// it was. The number of bytes read.
pub fn pread_at(fd: RawFd, buf: &mut [u8], offset: libc::off_t) -> Result<usize, Errno> {
    // SAFETY: `buf` is an exclusively borrowed, initialized buffer of
    // `buf.len()` bytes, and the kernel writes at most that many into it.
    let n = unsafe { libc::pread(fd, buf.as_mut_ptr().cast(), buf.len(), offset) };
    Errno::result(n).map(|n| n as usize)
}

/// fstat(2): the device and inode of the file `fd` is open on; None when
/// it is not open.
pub fn fstat_identity(fd: RawFd) -> Option<(u64, u64)> {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is a local, writable struct stat, which fstat fills
    // whole when it succeeds; it is read only then.
    let stat = unsafe { (libc::fstat(fd, stat.as_mut_ptr()) == 0).then(|| stat.assume_init()) }?;
    Some((stat.st_dev as u64, stat.st_ino as u64))
}

/// fcntl(F_GETFD): the descriptor's flags (FD_CLOEXEC); EBADF when `fd` is
/// not open.
pub fn fd_flags(fd: RawFd) -> Result<libc::c_int, Errno> {
    // SAFETY: F_GETFD takes no argument and passes no memory: it only
    // reads the flags of the descriptor table's slot.
    Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFD) })
}

/// dup3(2): `onto` names the file `from` is open on, with `flags`
/// (O_CLOEXEC or none), its old file's reference dropped atomically.
/// `onto` is a number the caller owns.
pub fn dup3(from: RawFd, onto: RawFd, flags: OFlag) -> Result<(), Errno> {
    // SAFETY: passes numbers only, no memory; the kernel checks both and
    // fails with EBADF (or EINVAL when they are equal) without acting.
    Errno::result(unsafe { libc::dup3(from, onto, flags.bits()) }).map(drop)
}

/// close(2) of a number the caller owns.
pub fn close(fd: RawFd) -> Result<(), Errno> {
    nix::unistd::close(fd)
}

/// getsockopt(2) of an int-valued option: SO_TYPE, SO_ACCEPTCONN, ...
pub fn getsockopt_int(fd: RawFd, level: libc::c_int, opt: libc::c_int) -> Result<libc::c_int, Errno> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `value` and `len` are locals, and `len` tells the kernel the
    // size of `value`: it writes at most that many bytes into it, and the
    // length it wrote into `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            opt,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    Errno::result(rc).map(|_| value)
}

/// getsockopt(TCP_INFO): the segments the TCP socket `fd` has received,
/// 0 on a kernel that does not count them (before Linux 4.2). None when
/// `fd` is not a TCP socket.
pub fn tcp_info_segs_in(fd: RawFd) -> Option<u32> {
    // SAFETY: tcp_info is plain integers, for which all zeroes is valid.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` and `len` are locals, and `len` tells the kernel the
    // size of `info`: it writes at most that many bytes (fewer on an older
    // kernel, leaving the rest zero) and the length it wrote into `len`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(info.tcpi_segs_in)
}

/// getdents64(2) of the directory open on `dir`, into `buf`: the number of
/// bytes of records written, 0 at the end of the directory.
pub fn getdents64(dir: RawFd, buf: &mut [u8]) -> Result<usize, Errno> {
    // SAFETY: `buf` is an exclusively borrowed, initialized buffer of
    // `buf.len()` bytes, and the kernel writes at most that many into it.
    let n = unsafe { libc::syscall(libc::SYS_getdents64, dir, buf.as_mut_ptr(), buf.len()) };
    Errno::result(n).map(|n| n as usize)
}

/// pthread_atfork(3): `prepare` runs before every fork of the process, in
/// the forking thread, `parent` and `child` after it in each process.
pub fn pthread_atfork(
    prepare: extern "C" fn(),
    parent: extern "C" fn(),
    child: extern "C" fn(),
) -> Result<(), Errno> {
    // SAFETY: the C library keeps the three pointers and calls them at each
    // fork, with no arguments, as their type says. They are safe functions
    // of this library, whose code stays mapped for the process's life
    // (Ruby never unloads an extension, nor an executable itself); nothing
    // else is passed.
    let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    if rc == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw(rc))
    }
}

/// getpid(2): this process's id, asked of the kernel each time (std's
/// safe call; a pid is positive, so it fits a pid_t).
pub fn getpid() -> libc::pid_t {
    std::process::id() as libc::pid_t
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::{AsRawFd, IntoRawFd};

    #[test]
    fn a_number_with_no_file_is_ebadf_or_none() {
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        let fd = reader.into_raw_fd();
        close(fd).unwrap();
        // Far above the numbers the other tests, running in parallel, use.
        let free = 1_000_000;
        assert_eq!(fd_flags(free), Err(Errno::EBADF));
        assert_eq!(fstat_identity(free), None);
        assert_eq!(pread_at(free, &mut [0u8; 8], 0), Err(Errno::EBADF));
        assert_eq!(getsockopt_int(free, libc::SOL_SOCKET, libc::SO_TYPE), Err(Errno::EBADF));
        assert_eq!(tcp_info_segs_in(free), None);
        assert_eq!(close(free), Err(Errno::EBADF));
    }

    #[test]
    fn a_pipe_is_no_socket_and_has_an_identity() {
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        let fd = reader.as_raw_fd();
        assert!(fstat_identity(fd).is_some());
        assert_eq!(fd_flags(fd).map(|f| f & libc::FD_CLOEXEC), Ok(0));
        assert_eq!(getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_TYPE), Err(Errno::ENOTSOCK));
        assert_eq!(tcp_info_segs_in(fd), None);
    }
}
