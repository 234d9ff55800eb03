//! The process's open file descriptors, in ascending order.
//!
//! Linux: the kernel's fd table size (FDSize in /proc/self/status) bounds
//! the highest open fd, and poll(2) over the slots below it answers POLLNVAL
//! for each empty one: one syscall per 256 slots. In a freshly forked child
//! this is far cheaper than listing /proc/self/fd, because procfs builds an
//! inode for every fd of a new pid the first time it is listed (measured:
//! 1.5 us per fd at 4096), and cheaper than one F_GETFD per slot when the
//! table is mostly empty. A table too large to sweep (a lone fd at 100000,
//! say) is listed with raw `getdents64` instead, into a stack buffer with no
//! allocation per entry. macOS lists `/dev/fd`. With neither, we sweep below
//! RLIMIT_NOFILE, capped so an unlimited limit cannot stall a fork.

use std::os::fd::RawFd;

use nix::errno::Errno;

use crate::sys;

/// Tables up to this size are swept with poll; larger ones are listed.
const SWEEP_TABLE_MAX: RawFd = 16384;
/// The last-resort sweep never looks past this many numbers.
const SWEEP_CAP: u64 = 1 << 20;
/// Slots per poll(2) call: 2 KB of stack.
const POLL_CHUNK: usize = 256;

pub fn open_fds() -> Vec<RawFd> {
    let mut fds = Vec::new();
    each_open_fd(None, |fd| fds.push(fd));
    fds
}

/// Calls `visit` with each open fd, in ascending order, given a bound on
/// the fd table's size if the caller knows one (a child is given its
/// parent's: see `kit`); else FDSize is read. The sweep keeps nothing but
/// a chunk of slots on the stack: a freshly forked child that writes a
/// page copies it.
pub fn each_open_fd(known_table_size: Option<RawFd>, visit: impl FnMut(RawFd)) {
    let table_size = known_table_size.or_else(fd_table_size);
    if let Some(size) = table_size.filter(|&size| size <= SWEEP_TABLE_MAX) {
        return sweep_below(size, visit);
    }
    match list_fd_dir() {
        Ok(mut fds) => {
            fds.sort_unstable();
            fds.into_iter().for_each(visit);
        }
        Err(_) => sweep_below(rlimit_bound(), visit),
    }
}

/// The open fds below `limit`. poll(2) with no events and a zero timeout
/// waits on nothing: it only reports POLLNVAL for a slot with no file. If a
/// call fails as a whole (nfds above a tiny RLIMIT_NOFILE, say), that chunk
/// is checked one F_GETFD at a time.
fn sweep_below(limit: RawFd, mut visit: impl FnMut(RawFd)) {
    let mut slots = [libc::pollfd {
        fd: 0,
        events: 0,
        revents: 0,
    }; POLL_CHUNK];
    let mut base: RawFd = 0;
    while base < limit {
        let chunk = &mut slots[..(limit - base).min(POLL_CHUNK as RawFd) as usize];
        for (slot, fd) in chunk.iter_mut().zip(base..) {
            *slot = libc::pollfd {
                fd,
                events: 0,
                revents: 0,
            };
        }
        if sys::poll_slots(chunk).is_err() {
            let open = chunk.iter().map(|slot| slot.fd).filter(|&fd| is_open(fd));
            open.for_each(&mut visit);
        } else {
            let open = chunk
                .iter()
                .filter(|slot| slot.revents & libc::POLLNVAL == 0);
            open.for_each(|slot| visit(slot.fd));
        }
        base += chunk.len() as RawFd;
    }
}

#[cfg(target_os = "linux")]
fn fd_table_size() -> Option<RawFd> {
    let status = std::fs::File::open("/proc/self/status").ok()?;
    fd_size_in(std::os::fd::AsRawFd::as_raw_fd(&status))
}

#[cfg(not(target_os = "linux"))]
fn fd_table_size() -> Option<RawFd> {
    None
}

/// FDSize from an open /proc status file, in one read at offset 0: procfs
/// renders the whole file afresh for it, FDSize is in its first lines, and
/// a descriptor shared with other processes keeps its offset.
pub fn fd_size_in(status: RawFd) -> Option<RawFd> {
    let mut buf = [0u8; 4096];
    let n = sys::pread_at(status, &mut buf, 0).ok()?;
    parse_fd_size(&buf[..n])
}

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

/// A descriptor and the file it was open on when it was seen: the number
/// alone may have been closed and given to another file since (a client's
/// number to the outbound connection opened next, say).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seen {
    pub fd: RawFd,
    dev: u64,
    ino: u64,
}

impl Seen {
    /// None when `fd` is not open.
    pub fn now(fd: RawFd) -> Option<Self> {
        let (dev, ino) = sys::fstat_identity(fd)?;
        Some(Self { fd, dev, ino })
    }

    /// Still open on the same file.
    pub fn is_intact(&self) -> bool {
        sys::fstat_identity(self.fd) == Some((self.dev, self.ino))
    }
}

/// True when `fd` names an open file description.
pub fn is_open(fd: RawFd) -> bool {
    cloexec(fd).is_ok()
}

/// The descriptor's FD_CLOEXEC flag (EBADF when `fd` is not open).
pub fn cloexec(fd: RawFd) -> Result<bool, Errno> {
    Ok(sys::fd_flags(fd)? & libc::FD_CLOEXEC != 0)
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
        let n = sys::getdents64(dir.as_raw_fd(), &mut buf)?;
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

fn rlimit_bound() -> RawFd {
    use nix::sys::resource::{getrlimit, Resource};

    let limit = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    limit.min(SWEEP_CAP) as RawFd
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swept_below(limit: RawFd) -> Vec<RawFd> {
        let mut fds = Vec::new();
        sweep_below(limit, |fd| fds.push(fd));
        fds
    }

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
        let table = fd_table_size().unwrap();
        assert!(table > held[1]);
        let mut listed = list_fd_dir().unwrap();
        listed.sort_unstable();
        for found in [
            &fds,
            &listed,
            &swept_below(rlimit_bound()),
            &swept_below(table),
        ] {
            assert!(held.iter().all(|fd| found.contains(fd)), "{found:?}");
        }
    }

    #[test]
    fn the_sweep_crosses_chunks_and_skips_closed_slots() {
        use nix::fcntl::{fcntl, FcntlArg};
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        // Far above the numbers the other tests, running in parallel, use.
        let high = fcntl(&reader, FcntlArg::F_DUPFD_CLOEXEC(700)).unwrap();
        assert!(swept_below(high + 1).contains(&high));
        assert!(!swept_below(high).contains(&high));
        nix::unistd::close(high).unwrap();
        assert!(!swept_below(high + 1).contains(&high));
    }
}
