//! The child's whole pass after fork: one enumeration, one classification,
//! one dead end shared by every descriptor it neutralizes.

use std::os::fd::RawFd;

use nix::errno::Errno;

use crate::classify::{sockets_among, Kind, Listeners, Socket};
use crate::fds::open_fds_within;
use crate::neutralize::{DeadEnd, DeadEndKind};

#[derive(Debug, Default)]
pub struct PassOptions<'a> {
    /// Sockets handed to the child on purpose: never touched.
    pub keep: &'a [RawFd],
    /// Neutralize listeners too (the fork is app code, not the server's).
    pub release_listeners: bool,
    /// Sockets a server integration registered as in flight.
    pub registered: &'a [RawFd],
    /// Whose listeners count: every one open, or the server's alone.
    pub listeners: Listeners<'a>,
    /// A bound on the fd table's size, if the caller knows one.
    pub fd_table_size: Option<RawFd>,
    /// A dead socket to point targets at, if the caller has one.
    pub dead_end: Option<RawFd>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    pub clients: Vec<RawFd>,
    pub listeners: Vec<RawFd>,
    /// Sockets that would have been neutralized but were kept.
    pub kept: Vec<RawFd>,
    /// None when there was nothing to neutralize.
    pub dead_end: Option<DeadEndKind>,
    /// Descriptors that could not be neutralized, with why.
    pub failed: Vec<(RawFd, Errno)>,
}

impl PassReport {
    /// Something the child could not do as planned, worth a warning.
    pub fn has_trouble(&self) -> bool {
        !self.failed.is_empty()
            || matches!(
                self.dead_end,
                Some(DeadEndKind::DevNull | DeadEndKind::Vacated)
            )
    }
}

pub fn child_pass(opts: &PassOptions) -> PassReport {
    let mut report = PassReport::default();
    let targets = targets(opts, &mut report);
    neutralize_all(&targets, opts.dead_end, &mut report);
    report
}

/// What the policy says to neutralize; kept sockets go into the report.
fn targets(opts: &PassOptions, report: &mut PassReport) -> Vec<Socket> {
    sockets_among(
        open_fds_within(opts.fd_table_size),
        opts.registered,
        opts.listeners,
    )
    .into_iter()
    .filter(|s| is_target(s, opts))
    .filter(|s| {
        let kept = opts.keep.contains(&s.fd);
        if kept {
            report.kept.push(s.fd);
        }
        !kept
    })
    .collect()
}

/// Points every target at one dead end. A target that is gone by now (in a
/// child nothing else runs, but a caller of the pass might) is reported as
/// failed, and the others are still done.
fn neutralize_all(targets: &[Socket], shared: Option<RawFd>, report: &mut PassReport) {
    let Some(first) = targets.first() else {
        return;
    };
    let dead = match shared {
        Some(fd) => Ok(DeadEnd::shared(fd)),
        None => DeadEnd::new().or_else(|e| match e {
            Errno::EMFILE | Errno::ENFILE => DeadEnd::in_place_of(first.fd),
            e => Err(e),
        }),
    };
    let dead = match dead {
        Ok(dead) => dead,
        Err(e) => {
            report.failed = targets.iter().map(|s| (s.fd, e)).collect();
            return;
        }
    };
    report.dead_end = Some(dead.kind());
    for socket in targets {
        match dead.install_over(socket.fd) {
            Ok(()) if socket.kind == Kind::Listener => report.listeners.push(socket.fd),
            Ok(()) => report.clients.push(socket.fd),
            Err(e) => report.failed.push((socket.fd, e)),
        }
    }
}

fn is_target(socket: &Socket, opts: &PassOptions) -> bool {
    match socket.kind {
        Kind::Client => true,
        Kind::Listener => opts.release_listeners && opts.listeners.includes(&socket.local),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::SockAddr;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn a_target_gone_before_its_turn_is_reported_and_the_rest_done() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let _outbound = [
            TcpStream::connect(server.local_addr().unwrap()).unwrap(),
            TcpStream::connect(server.local_addr().unwrap()).unwrap(),
        ];
        // Far above the numbers the dead end and the other tests, running in
        // parallel, would take once it is closed.
        let accepted = server.accept().unwrap().0;
        let gone =
            nix::fcntl::fcntl(&accepted, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(1500)).unwrap();
        drop(accepted);
        let (kept_alive, _) = server.accept().unwrap();
        let opts = PassOptions::default();
        let mut report = PassReport::default();
        let planned: Vec<Socket> = targets(&opts, &mut report)
            .into_iter()
            .filter(|s| s.fd == gone || s.fd == kept_alive.as_raw_fd())
            .collect();
        assert_eq!(planned.len(), 2);
        nix::unistd::close(gone).unwrap();
        neutralize_all(&planned, None, &mut report);
        assert_eq!(report.failed, vec![(gone, Errno::EBADF)]);
        assert_eq!(report.clients, vec![kept_alive.as_raw_fd()]);
    }

    #[test]
    fn targets_follow_the_policy() {
        let socket = |kind, local: &str| Socket {
            fd: 3,
            kind,
            local: SockAddr::Inet(local.parse().unwrap()),
            remote: SockAddr::Unnamed,
        };
        let server = [SockAddr::Inet("0.0.0.0:8080".parse().unwrap())];
        let opts = |release_listeners, listeners| PassOptions {
            release_listeners,
            listeners,
            ..PassOptions::default()
        };
        let ours = socket(Kind::Listener, "0.0.0.0:8080");
        let other = socket(Kind::Listener, "127.0.0.1:9090");
        assert!(is_target(
            &socket(Kind::Client, "127.0.0.1:8080"),
            &opts(false, Listeners::Server(&server))
        ));
        assert!(!is_target(&ours, &opts(false, Listeners::Open)));
        assert!(is_target(&ours, &opts(true, Listeners::Server(&server))));
        assert!(is_target(&other, &opts(true, Listeners::Open)));
        assert!(!is_target(&other, &opts(true, Listeners::Server(&server))));
        for kind in [Kind::Connected, Kind::Unconnected, Kind::Datagram] {
            assert!(!is_target(
                &socket(kind, "127.0.0.1:8080"),
                &opts(true, Listeners::Open)
            ));
        }
    }
}
