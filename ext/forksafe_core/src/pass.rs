//! The child's whole pass after fork: one sweep of the fd table, with one
//! syscall for each descriptor on it, and one dead end shared by every
//! descriptor it neutralizes.
//!
//! The parent keeps what it knows of its sockets, as files (`Seen`): the
//! server's listeners (`listeners`) and the clients of its requests in
//! flight (`in_flight`). The child confirms each of those with one fstat;
//! any other descriptor is asked its local address once, which answers
//! ENOTSOCK for anything but a socket and, for a socket, whether a
//! listener of the server's could have accepted it. Only a socket that
//! could be a client and is not known (a connection accepted but not yet
//! in flight, a listener's copy) is probed in full. A pass asked for
//! (`Listeners::Open`) counts every listener's connections, which no
//! address tells in advance: it probes every socket it does not know.

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::socket::{getsockname, SockaddrStorage};

use crate::addr::SockAddr;
use crate::classify::{kind_of, probe, Kind, Listeners, Probe};
use crate::fds::{each_open_fd, Seen};
use crate::in_flight::Request;
use crate::neutralize::{DeadEnd, DeadEndKind};

#[derive(Debug, Default)]
pub struct PassOptions<'a> {
    /// Sockets handed to the child on purpose: never touched.
    pub keep: &'a [RawFd],
    /// Neutralize listeners too (the fork is app code, not the server's).
    pub release_listeners: bool,
    /// The requests a server integration has in flight, sorted by fd.
    pub in_flight: &'a [Request],
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
    let mut pass = Pass::new(opts);
    let mut in_flight = opts.in_flight;
    each_open_fd(opts.fd_table_size, |fd| {
        let past = in_flight.partition_point(|r| r.socket.fd < fd);
        let here = in_flight[past..].partition_point(|r| r.socket.fd == fd);
        pass.visit(fd, &in_flight[past..past + here]);
        in_flight = &in_flight[past + here..];
    });
    pass.finish()
}

struct Pass<'a> {
    opts: &'a PassOptions<'a>,
    report: PassReport,
    /// Made at the first target.
    dead_end: Option<Result<DeadEnd, Errno>>,
    /// The addresses of the listeners found open that count.
    open_listeners: Vec<SockAddr>,
    /// Sockets probed in full, decided once every listener open is known.
    probed: Vec<Probe>,
}

impl<'a> Pass<'a> {
    fn new(opts: &'a PassOptions<'a>) -> Self {
        Self {
            opts,
            report: PassReport::default(),
            dead_end: None,
            open_listeners: Vec::new(),
            probed: Vec::new(),
        }
    }

    /// One descriptor: a socket the parent knew, confirmed; else one
    /// question, and a probe only for what could be a client.
    /// `requests`: the entries in flight on this number, the file each was
    /// (one may be a hijacked socket the app closed, whose number a later
    /// connection took).
    fn visit(&mut self, fd: RawFd, requests: &[Request]) {
        let file = (!requests.is_empty()).then(|| Seen::now(fd)).flatten();
        if requests.iter().any(|r| Some(r.socket) == file) {
            return self.act(fd, Kind::Client);
        }
        if let Some(address) = self.known_listener(fd) {
            self.open_listeners.push(address);
            return self.act(fd, Kind::Listener);
        }
        let worth_probing = match self.opts.listeners {
            Listeners::Open => true,
            Listeners::Server(ours) => local_address(fd).is_some_and(|local| {
                ours.addresses
                    .iter()
                    .any(|address| local == *address || local.accepted_by(address))
            }),
        };
        if let Some(probe) = worth_probing.then(|| probe(fd)).flatten() {
            if probe.listening && self.opts.listeners.includes(&probe.local) {
                self.open_listeners.push(probe.local.clone());
            }
            self.probed.push(probe);
        }
    }

    /// The address of the server's listener `fd` still is, if it is one.
    fn known_listener(&self, fd: RawFd) -> Option<SockAddr> {
        let Listeners::Server(ours) = self.opts.listeners else {
            return None;
        };
        let (_, address) = ours
            .sockets
            .iter()
            .find(|(seen, _)| seen.fd == fd && seen.is_intact())?;
        Some(address.clone())
    }

    fn finish(mut self) -> PassReport {
        for probe in std::mem::take(&mut self.probed) {
            let kind = kind_of(&probe, false, &self.open_listeners);
            // A listener the server's addresses do not name is the app's
            // (one on the server's port at another address, SO_REUSEPORT).
            if kind != Kind::Listener || self.opts.listeners.includes(&probe.local) {
                self.act(probe.fd, kind);
            }
        }
        self.report.clients.sort_unstable();
        self.report.listeners.sort_unstable();
        self.report
    }

    /// Neutralizes `fd` if it is a target: a client, or one of the
    /// listeners that count when they are released.
    fn act(&mut self, fd: RawFd, kind: Kind) {
        let target = match kind {
            Kind::Client => true,
            Kind::Listener => self.opts.release_listeners,
            _ => false,
        };
        if !target {
            return;
        }
        if self.opts.keep.contains(&fd) {
            return self.report.kept.push(fd);
        }
        match self.dead_end(fd).and_then(|dead| dead.install_over(fd)) {
            Ok(()) if kind == Kind::Listener => self.report.listeners.push(fd),
            Ok(()) => self.report.clients.push(fd),
            Err(e) => self.report.failed.push((fd, e)),
        }
    }

    /// The one dead end every target points at, made for the first: the
    /// parent's if it left one, else a new one, else (the table full) the
    /// first target's own slot.
    fn dead_end(&mut self, first: RawFd) -> Result<&DeadEnd, Errno> {
        let shared = self.opts.dead_end;
        let made = self.dead_end.get_or_insert_with(|| match shared {
            Some(fd) => Ok(DeadEnd::shared(fd)),
            None => DeadEnd::new().or_else(|e| match e {
                Errno::EMFILE | Errno::ENFILE => DeadEnd::in_place_of(first),
                e => Err(e),
            }),
        });
        if let Ok(dead) = made {
            self.report.dead_end = Some(dead.kind());
        }
        made.as_ref().map_err(|e| *e)
    }
}

/// The local address of socket `fd`; None for anything else.
fn local_address(fd: RawFd) -> Option<SockAddr> {
    getsockname::<SockaddrStorage>(fd)
        .ok()
        .map(|a| SockAddr::from_storage(&a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::listeners::ServerListeners;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    /// A connection accepted on `listener`, and its peer.
    fn accepted(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let peer = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (listener.accept().unwrap().0, peer)
    }

    fn server_of(listener: &TcpListener) -> ServerListeners {
        let address = SockAddr::Inet(listener.local_addr().unwrap());
        ServerListeners {
            addresses: vec![address.clone()],
            sockets: vec![(Seen::now(listener.as_raw_fd()).unwrap(), address)],
        }
    }

    /// The pass over these fds alone: the test process holds other tests'
    /// sockets too, which a sweep of the whole table would neutralize.
    fn pass_over(opts: &PassOptions, fds: &[RawFd]) -> PassReport {
        let mut pass = Pass::new(opts);
        let mut fds = fds.to_vec();
        fds.sort_unstable();
        for fd in fds {
            let requests: Vec<Request> = opts
                .in_flight
                .iter()
                .filter(|r| r.socket.fd == fd)
                .copied()
                .collect();
            pass.visit(fd, &requests);
        }
        pass.finish()
    }

    #[test]
    fn the_server_s_sockets_are_dropped_and_the_app_s_left_alone() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let (in_flight_client, _peer) = accepted(&server);
        let (other_client, _other_peer) = accepted(&server);
        let app = TcpListener::bind("127.0.0.1:0").unwrap();
        let (app_client, outbound) = accepted(&app);
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        let ours = server_of(&server);
        let in_flight = [Request::on(in_flight_client.as_raw_fd(), 1).unwrap().unwrap()];
        let fds = [
            server.as_raw_fd(),
            in_flight_client.as_raw_fd(),
            other_client.as_raw_fd(),
            app.as_raw_fd(),
            app_client.as_raw_fd(),
            outbound.as_raw_fd(),
            reader.as_raw_fd(),
        ];
        let files: Vec<Seen> = [&in_flight_client, &other_client]
            .iter()
            .map(|s| Seen::now(s.as_raw_fd()).unwrap())
            .collect();
        let report = pass_over(
            &PassOptions {
                release_listeners: true,
                in_flight: &in_flight,
                listeners: Listeners::Server(&ours),
                ..PassOptions::default()
            },
            &fds,
        );
        let mut clients = vec![in_flight_client.as_raw_fd(), other_client.as_raw_fd()];
        clients.sort_unstable();
        assert_eq!(report.clients, clients);
        assert_eq!(report.listeners, vec![server.as_raw_fd()]);
        assert!(report.failed.is_empty() && !report.has_trouble());
        // Each number is open on another file now: the dead end.
        assert!(files.iter().all(|file| !file.is_intact()));
        // The app's listener, its connection and the outbound one are live.
        assert!(app.local_addr().is_ok() && app_client.peer_addr().is_ok());
        assert!(outbound.peer_addr().is_ok());
    }

    #[test]
    fn the_server_s_own_fork_keeps_listeners_and_keep_is_kept() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let (handed, _peer) = accepted(&server);
        let ours = server_of(&server);
        let keep = [handed.as_raw_fd()];
        let report = pass_over(
            &PassOptions {
                keep: &keep,
                listeners: Listeners::Server(&ours),
                ..PassOptions::default()
            },
            &[server.as_raw_fd(), handed.as_raw_fd()],
        );
        assert_eq!(report.kept, keep);
        assert!(report.clients.is_empty() && report.listeners.is_empty());
        assert_eq!(report.dead_end, None);
        assert!(handed.peer_addr().is_ok() && server.local_addr().is_ok());
    }

    #[test]
    fn a_request_whose_number_was_reused_is_not_trusted() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let (client, _peer) = accepted(&server);
        let in_flight = [Request::on(client.as_raw_fd(), 1).unwrap().unwrap()];
        let other = TcpListener::bind("127.0.0.1:0").unwrap();
        let outbound = TcpStream::connect(other.local_addr().unwrap()).unwrap();
        // Onto the number this test's client owns.
        let onto = client.as_raw_fd();
        crate::sys::dup3(outbound.as_raw_fd(), onto, nix::fcntl::OFlag::empty()).unwrap();
        let ours = server_of(&server);
        let report = pass_over(
            &PassOptions {
                in_flight: &in_flight,
                listeners: Listeners::Server(&ours),
                ..PassOptions::default()
            },
            &[client.as_raw_fd()],
        );
        assert!(report.clients.is_empty());
        assert!(client.peer_addr().is_ok());
    }

    #[test]
    fn the_app_s_listener_on_the_server_s_port_is_the_app_s() {
        use nix::sys::socket::{listen, Backlog, SockaddrIn};
        let reuseport = |addr: SockaddrIn| -> TcpListener {
            let fd = crate::classify::tests::reuseport(&addr);
            listen(&fd, Backlog::new(8).unwrap()).unwrap();
            TcpListener::from(fd)
        };
        let server = reuseport("0.0.0.0:0".parse().unwrap());
        let port = server.local_addr().unwrap().port();
        let app = reuseport(format!("127.0.0.1:{port}").parse().unwrap());
        let ours = server_of(&server);
        let report = pass_over(
            &PassOptions {
                release_listeners: true,
                listeners: Listeners::Server(&ours),
                ..PassOptions::default()
            },
            &[server.as_raw_fd(), app.as_raw_fd()],
        );
        assert_eq!(report.listeners, vec![server.as_raw_fd()]);
        assert!(app.local_addr().is_ok());
    }

    /// A hijacked socket registered and closed by the app without an end
    /// leaves its entry; the next connection takes its number and is
    /// registered too, and the listener is closed (a graceful stop).
    #[test]
    fn a_number_in_flight_twice_is_the_live_entry_s() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let (hijacked, _peer) = accepted(&server);
        let stale = Request::on(hijacked.as_raw_fd(), 1).unwrap().unwrap();
        let (client, _other_peer) = accepted(&server);
        crate::sys::dup3(client.as_raw_fd(), hijacked.as_raw_fd(), nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let live = Request::on(hijacked.as_raw_fd(), 2).unwrap().unwrap();
        let ours = server_of(&server);
        drop(server);
        let in_flight = [stale, live];
        let report = pass_over(
            &PassOptions {
                in_flight: &in_flight,
                listeners: Listeners::Server(&ours),
                ..PassOptions::default()
            },
            &[hijacked.as_raw_fd()],
        );
        assert_eq!(report.clients, vec![hijacked.as_raw_fd()]);
    }

    #[test]
    fn a_pass_asked_for_drops_every_listener_s_connections() {
        let app = TcpListener::bind("127.0.0.1:0").unwrap();
        let (client, outbound) = accepted(&app);
        let (pair, _other_end) = std::os::unix::net::UnixStream::pair().unwrap();
        let report = pass_over(
            &PassOptions {
                release_listeners: true,
                ..PassOptions::default()
            },
            &[
                app.as_raw_fd(),
                client.as_raw_fd(),
                outbound.as_raw_fd(),
                pair.as_raw_fd(),
            ],
        );
        assert_eq!(report.clients, vec![client.as_raw_fd()]);
        assert_eq!(report.listeners, vec![app.as_raw_fd()]);
        assert!(outbound.peer_addr().is_ok() && pair.peer_addr().is_ok());
    }

    #[test]
    fn a_target_gone_before_its_turn_is_reported_and_the_rest_done() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let (first, _peer) = accepted(&server);
        let (kept_alive, _other_peer) = accepted(&server);
        // Far above the numbers the dead end and the other tests, running in
        // parallel, would take once it is closed.
        let gone_fd =
            nix::fcntl::fcntl(&first, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(1500)).unwrap();
        drop(first);
        let opts = PassOptions::default();
        let mut pass = Pass::new(&opts);
        for fd in [server.as_raw_fd(), gone_fd, kept_alive.as_raw_fd()] {
            pass.visit(fd, &[]);
        }
        crate::sys::close(gone_fd).unwrap();
        let report = pass.finish();
        assert_eq!(report.failed, vec![(gone_fd, Errno::EBADF)]);
        assert_eq!(report.clients, vec![kept_alive.as_raw_fd()]);
    }
}
