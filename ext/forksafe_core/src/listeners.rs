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

use crate::addr::SockAddr;
use crate::classify::{sockets, Kind, Listeners};
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

/// Adds the addresses of the listeners open now to this process's.
pub fn remember() {
    let open: Vec<SockAddr> = sockets(&[], Listeners::Open)
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
    for address in open {
        if !known.addresses.contains(&address) {
            known.addresses.push(address);
        }
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

    #[test]
    fn a_listener_is_remembered_after_it_closes() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = SockAddr::Inet(server.local_addr().unwrap());
        remember();
        remember();
        assert_eq!(
            of(this_process()).iter().filter(|a| **a == address).count(),
            1
        );
        drop(server);
        assert!(of(this_process() + 1).is_empty());
    }
}
