//! The addresses of the listeners a server process has had.
//!
//! A child tells an accepted connection from an outbound one by its local
//! address: a listener's. But a server closes its listeners first when it
//! stops gracefully, while requests, and connections waiting in a
//! reactor, are still open: a child forked then would find no listener to
//! explain them, and keep them live. So a process that takes a server's
//! role remembers its listeners' addresses (see `role::rise_to`), and a
//! child's pass counts those as listeners too.

use crate::addr::SockAddr;
use crate::classify::sockets;
use crate::classify::Kind;
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
    let open: Vec<SockAddr> = sockets(&[], &[])
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
        drop(server);
        remember();
        assert!(of(this_process()).contains(&address));
        assert!(of(this_process() + 1).is_empty());
    }
}
