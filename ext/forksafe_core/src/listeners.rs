//! The addresses of the listeners a server process has: which of the
//! process's listeners are the server's.
//!
//! A process with a server's role may hold listeners that are none of the
//! server's: Passenger's preloader its spawn socket, a test suite an
//! inetd-style component beside an in-process puma. A child of that
//! process drops the server's listeners and the connections accepted on
//! them, and leaves those others to the app, as without the gem. So each
//! time an integration says the process is a server's (see
//! `role::rise_to`), the addresses of the listeners open then are
//! remembered as the server's.
//!
//! An address explains connections only while a listener is bound to it
//! (see `classify::Listeners`): once it is closed, an outbound connection
//! may be given that port, and the connections the server still holds (at
//! a graceful stop) are those of its requests in flight (`in_flight`).

use std::os::fd::RawFd;

use crate::addr::SockAddr;
use crate::classify::{sockets_among, Kind, Listeners};
use crate::fds::{open_fds, Seen};
use crate::fork_lock::{ForkLock, Guard};
use crate::pid::this_process;

/// A server's listeners, as a child of its process takes them.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ServerListeners {
    /// Every address a listener of the server was bound to.
    pub addresses: Vec<SockAddr>,
    /// The listener sockets seen, each with its address: a child confirms
    /// one with a fstat, and knows its address open without asking.
    pub sockets: Vec<(Seen, SockAddr)>,
}

pub(crate) struct Remembered {
    /// The process these are: a child takes its own when it has a role.
    pid: libc::pid_t,
    listeners: ServerListeners,
}

impl Remembered {
    /// The listeners process `pid` remembered: in a child inside fork, its
    /// parent's. None for any other process.
    pub(crate) fn of(&self, pid: libc::pid_t) -> Option<&ServerListeners> {
        (self.pid == pid).then_some(&self.listeners)
    }
}

/// No listeners, of no process.
const NONE: Remembered = Remembered {
    pid: 0,
    listeners: ServerListeners {
        addresses: Vec::new(),
        sockets: Vec::new(),
    },
};

/// Read by the child's pass inside fork; see `fork_lock`.
pub(crate) static REMEMBERED: ForkLock<Remembered> = ForkLock::new(NONE);

/// In a child whose parent's listeners were being added to at the fork:
/// none (the child's own role remembers its own).
pub(crate) fn mend_in_child() {
    REMEMBERED.mend_in_child(NONE);
}

pub(crate) fn remembered() -> Guard<'static, Remembered> {
    REMEMBERED.lock()
}

/// Which of the process's listeners a server says are its own.
#[derive(Clone, Copy, Debug)]
pub enum Given<'a> {
    /// These fds (the server's listener objects: unicorn's LISTENERS,
    /// puma's binder): those of them listening.
    Fds(&'a [RawFd]),
    /// Every listener open now: a server that names none.
    AllOpen,
}

/// Adds the server's listeners to this process's.
pub fn remember(given: Given) {
    let fds = match given {
        Given::Fds(fds) => fds.to_vec(),
        Given::AllOpen => open_fds(),
    };
    let ours: Vec<(Seen, SockAddr)> = sockets_among(fds, &[], Listeners::Open)
        .into_iter()
        .filter(|s| s.kind == Kind::Listener && s.local != SockAddr::Unnamed)
        .filter_map(|s| Some((Seen::now(s.fd)?, s.local)))
        .collect();
    let pid = this_process();
    let mut remembered = remembered();
    if remembered.pid != pid {
        remembered.pid = pid;
        remembered.listeners = ServerListeners::default();
    }
    let listeners = &mut remembered.listeners;
    for (socket, address) in ours {
        if !listeners.addresses.contains(&address) {
            listeners.addresses.push(address.clone());
        }
        listeners.sockets.retain(|(seen, _)| seen.fd != socket.fd);
        listeners.sockets.push((socket, address));
    }
}

/// In a child of the server's own fork (a worker, a mold), inside fork:
/// its parent's listeners are its own, before it says so itself (a
/// worker's boot hooks run before it serves).
pub(crate) fn adopt(parent: libc::pid_t) {
    let mut remembered = remembered();
    if remembered.pid == parent {
        remembered.pid = this_process();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

    fn addresses_of(pid: libc::pid_t) -> Vec<SockAddr> {
        remembered()
            .of(pid)
            .map_or_else(Vec::new, |ours| ours.addresses.clone())
    }

    #[test]
    fn a_listener_is_remembered_once_and_for_this_process() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = SockAddr::Inet(server.local_addr().unwrap());
        remember(Given::AllOpen);
        remember(Given::Fds(&[server.as_raw_fd()]));
        let ours = addresses_of(this_process());
        assert_eq!(ours.iter().filter(|a| **a == address).count(), 1);
        assert!(addresses_of(this_process() + 1).is_empty());
    }

    #[test]
    fn the_listeners_given_are_remembered_and_what_is_not_one_is_ignored() {
        let ours = TcpListener::bind("127.0.0.1:0").unwrap();
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        remember(Given::Fds(&[ours.as_raw_fd(), reader.as_raw_fd()]));
        let addresses = addresses_of(this_process());
        assert!(addresses.contains(&SockAddr::Inet(ours.local_addr().unwrap())));
    }
}
