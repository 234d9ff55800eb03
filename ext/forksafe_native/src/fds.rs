//! The process's open file descriptors, in ascending order.
//!
//! Linux: the kernel's fd table size (FDSize in /proc/self/status) bounds
//! the highest open fd; every slot below it is a candidate, and one
//! syscall per slot (F_GETFD, or the classifier's own getsockopt) tells. In a
//! freshly forked child this is about 5x cheaper than listing
//! /proc/self/fd, because procfs builds an inode for every fd of a new pid
//! the first time it is listed (measured: 0.25 vs 1.5 us per fd at 4096).
//! A table too large to probe (a lone fd at 100000, say) is listed with raw
//! `getdents64` instead, into a stack buffer with no allocation per entry.
//! macOS lists `/dev/fd`. With neither, we probe below RLIMIT_NOFILE,
//! capped so an unlimited limit cannot stall a fork.

use std::os::fd::RawFd;

use nix::errno::Errno;

/// Tables up to this size are probed slot by slot; larger ones are listed.
const PROBE_TABLE_MAX: RawFd = 16384;
/// The last-resort probe never looks past this many numbers.
const PROBE_CAP: u64 = 1 << 20;

pub fn open_fds() -> Vec<RawFd> {
    let mut fds = candidate_fds();
    fds.retain(|&fd| is_open(fd));
    fds
}

/// Every number that may be an open fd, ascending: the whole fd table when
/// it is small enough to probe, else the listed fds. A caller that makes a
/// syscall on each fd anyway (the classifier's getsockopt answers EBADF for
/// an empty slot) saves the F_GETFD per slot that `open_fds` adds.
pub fn candidate_fds() -> Vec<RawFd> {
    if let Some(size) = fd_table_size().filter(|&size| size <= PROBE_TABLE_MAX) {
        return (0..size).collect();
    }
    let mut fds = list_fd_dir().unwrap_or_else(|_| probe_rlimit());
    fds.sort_unstable();
    fds
}

#[cfg(target_os = "linux")]
fn fd_table_size() -> Option<RawFd> {
    let status = std::fs::read("/proc/self/status").ok()?;
    parse_fd_size(&status)
}

#[cfg(not(target_os = "linux"))]
fn fd_table_size() -> Option<RawFd> {
    None
}

#[cfg(any(target_os = "linux", test))]
fn parse_fd_size(status: &[u8]) -> Option<RawFd> {
    let line = status
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"FDSize:"))?;
    std::str::from_utf8(&line[b"FDSize:".len()..])
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// True when `fd` names an open file description.
pub fn is_open(fd: RawFd) -> bool {
    cloexec(fd).is_ok()
}

/// The descriptor's FD_CLOEXEC flag (EBADF when `fd` is not open).
pub fn cloexec(fd: RawFd) -> Result<bool, Errno> {
    // SAFETY: F_GETFD only reads the descriptor's flags.
    let flags = Errno::result(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    Ok(flags & libc::FD_CLOEXEC != 0)
}

#[cfg(target_os = "linux")]
fn list_fd_dir() -> Result<Vec<RawFd>, Errno> {
    use nix::fcntl::{open, OFlag};
    use nix::sys::stat::Mode;
    use std::os::fd::AsRawFd;

    let dir = open(
        "/proc/self/fd",
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let mut fds = Vec::with_capacity(64);
    let mut buf = [0u8; 8192];
    loop {
        // SAFETY: the kernel writes at most buf.len() bytes into buf.
        let n = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        let n = Errno::result(n)? as usize;
        if n == 0 {
            break;
        }
        parse_dirents(&buf[..n], &mut fds);
    }
    // The directory's own descriptor was listed too.
    fds.retain(|&fd| fd != dir.as_raw_fd());
    Ok(fds)
}

/// Appends the numeric names found in a `getdents64` buffer.
///
/// Each record is `d_ino: u64, d_off: i64, d_reclen: u16, d_type: u8`,
/// then a NUL-terminated name. "." and ".." are not numbers and are skipped.
#[cfg(any(target_os = "linux", test))]
fn parse_dirents(buf: &[u8], out: &mut Vec<RawFd>) {
    const NAME: usize = 19;
    let mut off = 0;
    while off + NAME <= buf.len() {
        let reclen = u16::from_ne_bytes([buf[off + 16], buf[off + 17]]) as usize;
        if reclen == 0 || off + reclen > buf.len() {
            break;
        }
        let name = &buf[off + NAME..off + reclen];
        let name = name.split(|&b| b == 0).next().unwrap_or_default();
        if let Some(fd) = parse_fd(name) {
            out.push(fd);
        }
        off += reclen;
    }
}

fn parse_fd(name: &[u8]) -> Option<RawFd> {
    if name.is_empty() || name.len() > 10 {
        return None;
    }
    let mut fd: i64 = 0;
    for &b in name {
        if !b.is_ascii_digit() {
            return None;
        }
        fd = fd * 10 + i64::from(b - b'0');
    }
    RawFd::try_from(fd).ok()
}

#[cfg(not(target_os = "linux"))]
fn list_fd_dir() -> Result<Vec<RawFd>, Errno> {
    use std::os::unix::ffi::OsStrExt;

    let entries =
        std::fs::read_dir("/dev/fd").map_err(|e| Errno::from_raw(e.raw_os_error().unwrap_or(0)))?;
    let mut fds: Vec<RawFd> = entries
        .filter_map(|e| e.ok().and_then(|e| parse_fd(e.file_name().as_bytes())))
        .collect();
    // The directory's own descriptor is closed by now; drop its number.
    fds.retain(|&fd| is_open(fd));
    Ok(fds)
}

fn probe_rlimit() -> Vec<RawFd> {
    use nix::sys::resource::{getrlimit, Resource};

    let limit = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    (0..limit.min(PROBE_CAP) as RawFd)
        .filter(|&fd| is_open(fd))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirent(name: &str) -> Vec<u8> {
        let reclen = (19 + name.len() + 1).next_multiple_of(8);
        let mut rec = vec![0u8; reclen];
        rec[16..18].copy_from_slice(&(reclen as u16).to_ne_bytes());
        rec[19..19 + name.len()].copy_from_slice(name.as_bytes());
        rec
    }

    #[test]
    fn parses_numeric_entries_and_skips_dots() {
        let buf: Vec<u8> = [".", "..", "0", "1", "2", "17", "1024"]
            .iter()
            .flat_map(|n| dirent(n))
            .collect();
        let mut out = Vec::new();
        parse_dirents(&buf, &mut out);
        assert_eq!(out, vec![0, 1, 2, 17, 1024]);
    }

    #[test]
    fn stops_at_a_truncated_or_zero_length_record() {
        let mut buf = dirent("3");
        buf.extend_from_slice(&dirent("4")[..10]);
        let mut out = Vec::new();
        parse_dirents(&buf, &mut out);
        assert_eq!(out, vec![3]);

        let mut out = Vec::new();
        parse_dirents(&[0u8; 32], &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn parse_fd_rejects_non_numbers_and_overflow() {
        assert_eq!(parse_fd(b"0"), Some(0));
        assert_eq!(parse_fd(b"2147483647"), Some(RawFd::MAX));
        assert_eq!(parse_fd(b"2147483648"), None);
        assert_eq!(parse_fd(b"12345678901"), None);
        assert_eq!(parse_fd(b""), None);
        assert_eq!(parse_fd(b"1a"), None);
        assert_eq!(parse_fd(b"-1"), None);
    }

    #[test]
    fn parses_fd_table_size() {
        let status = b"Name:\truby\nFDSize:\t4096\nGroups:\t0\n";
        assert_eq!(parse_fd_size(status), Some(4096));
        assert_eq!(parse_fd_size(b"Name:\truby\n"), None);
        assert_eq!(parse_fd_size(b"FDSize:\tlots\n"), None);
    }

    #[test]
    fn every_strategy_finds_the_fds_this_test_holds() {
        use std::os::fd::AsRawFd;
        let (reader, writer) = nix::unistd::pipe().unwrap();
        let held = [reader.as_raw_fd(), writer.as_raw_fd()];
        let fds = open_fds();
        assert!(fds.windows(2).all(|pair| pair[0] < pair[1]));
        let candidates = candidate_fds();
        assert!(candidates.windows(2).all(|pair| pair[0] < pair[1]));
        for found in [fds, candidates, list_fd_dir().unwrap(), probe_rlimit()] {
            assert!(held.iter().all(|fd| found.contains(fd)), "{found:?}");
        }
        assert!(fd_table_size().unwrap() > held[1]);
    }
}
