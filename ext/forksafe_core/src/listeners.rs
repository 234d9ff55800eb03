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
//! a graceful stop) are those it registered (`in_flight`).

use std::os::fd::RawFd;

use crate::addr::SockAddr;
use crate::classify::{sockets_among, Kind, Listeners};
use crate::fds::open_fds;
use crate::fork_lock::ForkLock;
use crate::pid::this_process;

pub(crate) struct Known {
    /// The process these are: a child takes its own when it has a role.
    pid: libc::pid_t,
    addresses: Vec<SockAddr>,
}

/// Read by the child's pass inside fork; see `fork_lock`.
pub(crate) static KNOWN: ForkLock<Known> = ForkLock::new(Known {
    pid: 0,
    addresses: Vec::new(),
});

/// Which of the process's listeners a server says are its own.
#[derive(Clone, Copy, Debug)]
pub enum Given<'a> {
    /// These fds (the server's listener objects: unicorn's LISTENERS,
    /// puma's binder): those of them listening.
    Fds(&'a [RawFd]),
    /// Every listener open now: a server that names none.
    AllOpen,
}

/// Adds the addresses of the server's listeners to this process's.
pub fn remember(given: Given) {
    let fds = match given {
        Given::Fds(fds) => fds.to_vec(),
        Given::AllOpen => open_fds(),
    };
    let ours: Vec<SockAddr> = sockets_among(fds, &[], Listeners::Open)
        .into_iter()
        .filter(|s| s.kind == Kind::Listener && s.local != SockAddr::Unnamed)
        .map(|s| s.local)
        .collect();
    let pid = this_process();
    let mut known = KNOWN.lock();
    if known.pid != pid {
        known.pid = pid;
        known.addresses.clear();
    }
    for address in ours {
        if !known.addresses.contains(&address) {
            known.addresses.push(address);
        }
    }
}

/// In a child of the server's own fork (a worker, a mold), inside fork:
/// its parent's listeners are its own, before it says so itself (a
/// worker's boot hooks run before it serves).
pub(crate) fn adopt(parent: libc::pid_t) {
    let mut known = KNOWN.lock();
    if known.pid == parent {
        known.pid = this_process();
    }
}

/// The listener addresses process `pid` remembered: in a child inside
/// fork, its parent's.
pub fn of(pid: libc::pid_t) -> Vec<SockAddr> {
    let known = KNOWN.lock();
    if known.pid == pid {
        known.addresses.clone()
    } else {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::fd::AsRawFd;

    #[test]
    fn a_listener_is_remembered_once_and_for_this_process() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = SockAddr::Inet(server.local_addr().unwrap());
        remember(Given::AllOpen);
        remember(Given::Fds(&[server.as_raw_fd()]));
        let known = of(this_process());
        assert_eq!(known.iter().filter(|a| **a == address).count(), 1);
        assert!(of(this_process() + 1).is_empty());
    }

    #[test]
    fn the_listeners_given_are_remembered_and_what_is_not_one_is_ignored() {
        let ours = TcpListener::bind("127.0.0.1:0").unwrap();
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        remember(Given::Fds(&[ours.as_raw_fd(), reader.as_raw_fd()]));
        let known = of(this_process());
        assert!(known.contains(&SockAddr::Inet(ours.local_addr().unwrap())));
    }
}
