//! The requests a server integration has in flight, and the sockets of
//! those and of the connections it holds between requests.
//!
//! A fork from any thread, from Ruby or from C, must neutralize every
//! in-flight client, even when no listener explains it any more (a graceful
//! stop closes the listeners first). So each request is entered here
//! when it starts and dropped when it ends, and the child's pass reads the
//! table inside fork.
//!
//! A socket is held as the file it was (`Seen`), not only its number: an
//! app may close a hijacked client and open an outbound connection that
//! takes the same number, which must stay live in a child.

use std::os::fd::RawFd;

use nix::errno::Errno;

use crate::classify::may_be_client;
use crate::fds::Seen;
use crate::fork_lock::{ForkLock, Guard};
use crate::pid::this_process;

/// What `begin` returns, for `end`.
pub type Ticket = u64;

/// A request's socket, as the child's pass takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    pub socket: Seen,
    pub ticket: Ticket,
}

impl Request {
    /// A request on `fd`, if its socket may be a client: a stream socket,
    /// not listening, connected or reset by its peer (see `classify`). It
    /// is asked once, here, so that a child confirms the socket with one
    /// fstat. EBADF when `fd` is not open.
    pub fn on(fd: RawFd, ticket: Ticket) -> Result<Option<Request>, Errno> {
        Ok(client_file(fd)?.map(|socket| Request { socket, ticket }))
    }
}

/// The file of socket `fd` if it may be a client (see `Request::on`).
fn client_file(fd: RawFd) -> Result<Option<Seen>, Errno> {
    let socket = Seen::now(fd).ok_or(Errno::EBADF)?;
    Ok(may_be_client(fd).then_some(socket))
}

pub(crate) struct InFlight {
    /// The process whose requests these are. A child inherits its parent's
    /// table: its pass reads it, and its first request starts afresh.
    pid: libc::pid_t,
    next: Ticket,
    /// The requests whose socket may be a client (see `client_socket`),
    /// sorted by fd before each fork (see `sort_for_fork`).
    requests: Vec<Request>,
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

    /// In the parent, inside fork, under the lock the child inherits: the
    /// child walks the table beside its fds, in ascending order, without
    /// writing a page. `end` swaps entries out of order between forks. In
    /// place, allocating nothing inside fork; the order of entries on one
    /// number does not matter (the child looks at each).
    pub(crate) fn sort_for_fork(&mut self) {
        self.requests.sort_unstable_by_key(|r| r.socket.fd);
    }

    /// The requests `pid` has in flight, by fd: in a child inside fork,
    /// its parent's. Empty for any other process.
    pub(crate) fn of(&self, pid: libc::pid_t) -> &[Request] {
        if self.pid == pid {
            &self.requests
        } else {
            &[]
        }
    }
}

const PRUNE_FROM: usize = 64;

pub(crate) static IN_FLIGHT: ForkLock<InFlight> = ForkLock::new(InFlight::new(0));

/// In a child whose parent's table was being changed at the fork: empty.
pub(crate) fn mend_in_child() {
    IN_FLIGHT.mend_in_child(InFlight::new(0));
}

pub(crate) fn table() -> Guard<'static, InFlight> {
    IN_FLIGHT.lock()
}

/// A request of this process starts, on `socket` if it has one. EBADF
/// when the socket is not open.
pub fn begin(socket: Option<RawFd>) -> Result<Ticket, Errno> {
    // Asked before the lock: no other thread waits on our syscalls.
    let socket = socket.map(client_file).transpose()?.flatten();
    let pid = this_process();
    let mut table = table();
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
    table
        .requests
        .extend(socket.map(|socket| Request { socket, ticket }));
    if table.requests.len() >= table.prune_at {
        table.requests.retain(|r| r.socket.is_intact());
        table.prune_at = (table.requests.len() * 2).max(PRUNE_FROM);
    }
    Ok(ticket)
}

/// The request of `ticket` has ended (unknown tickets are ignored: a
/// parent's, say).
pub fn end(ticket: Ticket) {
    let pid = this_process();
    let mut table = table();
    if table.pid == pid {
        if let Some(at) = table.requests.iter().position(|r| r.ticket == ticket) {
            table.requests.swap_remove(at);
        }
    }
}

/// The sockets of the requests `pid` has in flight that are still open
/// on the same file.
pub fn of(pid: libc::pid_t) -> Vec<RawFd> {
    let table = table();
    table
        .of(pid)
        .iter()
        .filter(|r| r.socket.is_intact())
        .map(|r| r.socket.fd)
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
        // Onto the number this test's client owns.
        crate::sys::dup3(outbound.as_raw_fd(), fd, nix::fcntl::OFlag::empty()).unwrap();
        assert!(!of(this_process()).contains(&fd));
        end(ticket);
    }

    #[test]
    fn sockets_closed_without_an_end_are_dropped_as_the_table_grows() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let before = table().requests.len();
        for _ in 0..(PRUNE_FROM * 4) {
            let _outbound = TcpStream::connect(server.local_addr().unwrap()).unwrap();
            let (accepted, _) = server.accept().unwrap();
            begin(Some(accepted.as_raw_fd())).unwrap(); // never ended: a hijack
        }
        assert!(table().requests.len() < before + PRUNE_FROM * 2);
    }

    #[test]
    fn only_a_connected_stream_socket_is_a_request_s_client() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        assert_eq!(Request::on(server.as_raw_fd(), 1), Ok(None));
        assert_eq!(Request::on(udp.as_raw_fd(), 1), Ok(None));
        let request = Request::on(client.as_raw_fd(), 1).unwrap().unwrap();
        assert!(request.socket.is_intact());
    }

    #[test]
    fn a_child_finds_the_table_in_fd_order() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let clients: Vec<TcpStream> = (0..4)
            .map(|_| TcpStream::connect(server.local_addr().unwrap()).unwrap())
            .collect();
        let tickets: Vec<Ticket> = clients
            .iter()
            .rev()
            .map(|c| begin(Some(c.as_raw_fd())).unwrap())
            .collect();
        end(tickets[1]); // swaps the last entry into its place
        let mut table = table();
        table.sort_for_fork();
        let fds: Vec<RawFd> = table.of(this_process()).iter().map(|r| r.socket.fd).collect();
        assert!(fds.windows(2).all(|pair| pair[0] <= pair[1]), "{fds:?}");
        drop(table);
        tickets.into_iter().for_each(end);
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
