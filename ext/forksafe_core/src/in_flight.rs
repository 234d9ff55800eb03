//! The requests a server integration has in flight, and the sockets of
//! those and of the connections it holds between requests.
//!
//! A fork from any thread, from Ruby or from C, must neutralize every
//! in-flight client, even when no listener explains it any more (a graceful
//! stop closes the listeners first). So each request is registered here
//! when it starts and dropped when it ends, and the child's pass reads the
//! table inside fork.
//!
//! A socket is held as the file it was (`Seen`), not only its number: an
//! app may close a hijacked client and open an outbound connection that
//! takes the same number, which must stay live in a child.

use std::os::fd::RawFd;

use nix::errno::Errno;

use crate::fds::Seen;
use crate::fork_lock::ForkLock;
use crate::pid::this_process;

/// What `begin` returns, for `end`.
pub type Ticket = u64;

pub(crate) struct InFlight {
    /// The process whose requests these are. A child inherits its parent's
    /// table: its pass reads it, and its first request starts afresh.
    pid: libc::pid_t,
    next: Ticket,
    requests: Vec<(Ticket, Option<Seen>)>,
    /// The table's size at which `begin` drops the entries whose socket is
    /// closed: a connection the app took over (a hijack) is never ended by
    /// the server. Doubling it keeps that to a fstat per entry, amortized.
    prune_at: usize,
}

impl InFlight {
    const fn new(pid: libc::pid_t) -> Self {
        Self {
            pid,
            next: 0,
            requests: Vec::new(),
            prune_at: PRUNE_FROM,
        }
    }
}

const PRUNE_FROM: usize = 64;

pub(crate) static IN_FLIGHT: ForkLock<InFlight> = ForkLock::new(InFlight::new(0));

/// A request of this process starts, on `socket` if it has one. EBADF
/// when the socket is not open.
pub fn begin(socket: Option<RawFd>) -> Result<Ticket, Errno> {
    let seen = socket
        .map(|fd| Seen::now(fd).ok_or(Errno::EBADF))
        .transpose()?;
    let pid = this_process();
    let mut table = IN_FLIGHT.lock();
    if table.pid != pid {
        // The numbering goes on: a child inside its parent's request block
        // ends that request's ticket, which must not name one of its own.
        let next = table.next;
        *table = InFlight {
            next,
            ..InFlight::new(pid)
        };
    }
    table.next += 1;
    let ticket = table.next;
    table.requests.push((ticket, seen));
    if table.requests.len() >= table.prune_at {
        table
            .requests
            .retain(|(_, seen)| seen.map_or(true, |seen| seen.is_intact()));
        table.prune_at = (table.requests.len() * 2).max(PRUNE_FROM);
    }
    Ok(ticket)
}

/// The request of `ticket` has ended (unknown tickets are ignored: a
/// parent's, say).
pub fn end(ticket: Ticket) {
    let pid = this_process();
    let mut table = IN_FLIGHT.lock();
    if table.pid == pid {
        if let Some(at) = table.requests.iter().position(|(t, _)| *t == ticket) {
            table.requests.swap_remove(at);
        }
    }
}

/// The sockets of the requests `pid` has in flight that are still open
/// on the same file.
pub fn of(pid: libc::pid_t) -> Vec<RawFd> {
    let table = IN_FLIGHT.lock();
    if table.pid != pid {
        return Vec::new();
    }
    table
        .requests
        .iter()
        .filter_map(|(_, seen)| seen.filter(Seen::is_intact).map(|seen| seen.fd))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn a_request_is_in_flight_until_it_ends() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let fd = client.as_raw_fd();
        let with_socket = begin(Some(fd)).unwrap();
        let without = begin(None).unwrap();
        assert!(of(this_process()).contains(&fd));
        end(with_socket);
        assert!(!of(this_process()).contains(&fd));
        end(without);
        end(without); // twice: ignored
    }

    #[test]
    fn a_closed_socket_whose_number_was_reused_is_not_in_flight() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let fd = client.as_raw_fd();
        let ticket = begin(Some(fd)).unwrap();
        let outbound = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        // SAFETY: dup2 onto the number this test's client owns.
        assert_eq!(unsafe { libc::dup2(outbound.as_raw_fd(), fd) }, fd);
        assert!(!of(this_process()).contains(&fd));
        end(ticket);
    }

    #[test]
    fn sockets_closed_without_an_end_are_dropped_as_the_table_grows() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let before = IN_FLIGHT.lock().requests.len();
        for _ in 0..(PRUNE_FROM * 4) {
            let _outbound = TcpStream::connect(server.local_addr().unwrap()).unwrap();
            let (accepted, _) = server.accept().unwrap();
            begin(Some(accepted.as_raw_fd())).unwrap(); // never ended: a hijack
        }
        assert!(IN_FLIGHT.lock().requests.len() < before + PRUNE_FROM * 2);
    }

    #[test]
    fn a_socket_that_is_not_open_is_refused() {
        assert_eq!(begin(Some(999_999)), Err(Errno::EBADF));
    }

    #[test]
    fn another_process_s_requests_are_none_of_ours() {
        let ticket = begin(None).unwrap();
        assert_eq!(of(this_process() + 1), Vec::<RawFd>::new());
        end(ticket);
    }
}
