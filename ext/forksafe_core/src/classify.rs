//! What each socket of the process is, decided from the kernel alone.
//!
//! A listener has SO_ACCEPTCONN set. An accepted client is a connected
//! stream socket whose local address is a listener's (see
//! `SockAddr::accepted_by`), open or remembered (see `listeners`), or the
//! socket of a request a server integration has in flight (see
//! `in_flight`); or such a socket whose connection its peer reset, which
//! has no peer left. Everything else (outbound connections, whose local
//! port is ephemeral; socketpairs; datagram sockets) is never touched.

use std::os::fd::RawFd;

use nix::errno::Errno;
use nix::sys::socket::{getpeername, getsockname, SockaddrStorage};

use crate::addr::SockAddr;
use crate::fds::open_fds;
use crate::listeners::ServerListeners;
use crate::sys;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Listener,
    /// Accepted from one of our listeners, or a request's in flight.
    Client,
    /// Any other connected stream socket: outbound, socketpair, ...
    Connected,
    /// A stream socket neither listening nor connected.
    Unconnected,
    Datagram,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Listener => "listener",
            Kind::Client => "client",
            Kind::Connected => "connected",
            Kind::Unconnected => "unconnected",
            Kind::Datagram => "datagram",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Socket {
    pub fd: RawFd,
    pub kind: Kind,
    pub local: SockAddr,
    pub remote: SockAddr,
}

/// What the kernel says of one socket, before it is compared to the others.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub fd: RawFd,
    pub stream: bool,
    pub listening: bool,
    pub local: SockAddr,
    /// None when the socket has no peer (ENOTCONN).
    pub remote: Option<SockAddr>,
    /// A stream socket with no peer that had one: see `was_connected`.
    pub was_connected: bool,
}

/// Which listeners are the ones whose connections are clients.
#[derive(Clone, Copy, Debug, Default)]
pub enum Listeners<'a> {
    /// Every listener open (a pass asked for, `ForkSafe.sockets`).
    #[default]
    Open,
    /// Only the server's: the open listeners bound to its addresses, which
    /// the process remembered when it took a server's role (see
    /// `listeners`). A listener and its connections that are none of the
    /// server's (a preloader's, a test suite's) are the app's business. An
    /// address whose listener is closed explains nothing: a connection the
    /// server still holds then (a graceful stop) is one it has in flight, and
    /// an outbound connection may take that port.
    Server(&'a ServerListeners),
}

impl Listeners<'_> {
    /// Whether the listener bound to `local` is one of these.
    pub fn includes(&self, local: &SockAddr) -> bool {
        match self {
            Listeners::Open => true,
            Listeners::Server(ours) => ours.addresses.contains(local),
        }
    }
}

/// Every socket the process holds, classified. `in_flight` fds count as
/// clients when they are stream sockets connected, or reset by the peer;
/// so do connections accepted on `listeners`.
pub fn sockets(in_flight: &[RawFd], listeners: Listeners) -> Vec<Socket> {
    sockets_among(open_fds(), in_flight, listeners)
}

/// The same, among `fds` only.
pub fn sockets_among(fds: Vec<RawFd>, in_flight: &[RawFd], listeners: Listeners) -> Vec<Socket> {
    let probes = fds.into_iter().filter_map(probe).collect();
    classify(probes, in_flight, listeners)
}

/// None when `fd` is not a socket (or not open). The peer is asked first:
/// that answers ENOTSOCK for anything else, and a socket with a peer is not
/// listening, so a connected socket takes three syscalls and a non-socket
/// one.
pub fn probe(fd: RawFd) -> Option<Probe> {
    let remote = match getpeername::<SockaddrStorage>(fd) {
        Ok(addr) => Some(SockAddr::from_storage(&addr)),
        Err(Errno::ENOTSOCK | Errno::EBADF) => return None,
        Err(_) => None, // ENOTCONN, or a family without peers
    };
    let ty = socket_type(fd).ok()?;
    let stream = ty == libc::SOCK_STREAM || ty == libc::SOCK_SEQPACKET;
    let listening = remote.is_none() && stream && int_sockopt(fd, libc::SO_ACCEPTCONN) == Ok(1);
    let local = getsockname::<SockaddrStorage>(fd)
        .map_or(SockAddr::Unnamed, |a| SockAddr::from_storage(&a));
    let was_connected = remote.is_none() && stream && !listening && was_connected(fd);
    Some(Probe {
        fd,
        stream,
        listening,
        local,
        remote,
        was_connected,
    })
}

/// Whether `fd` may be a client, asked with no more calls than the answer
/// needs (a server registers every request's socket): a stream socket
/// with a peer, two syscalls; or one not listening whose peer reset it.
pub fn may_be_client(fd: RawFd) -> bool {
    let connected = match getpeername::<SockaddrStorage>(fd) {
        Ok(_) => true,
        Err(Errno::ENOTCONN) => false,
        Err(_) => return false,
    };
    let stream = matches!(
        socket_type(fd),
        Ok(libc::SOCK_STREAM | libc::SOCK_SEQPACKET)
    );
    stream && (connected || (int_sockopt(fd, libc::SO_ACCEPTCONN) != Ok(1) && was_connected(fd)))
}

/// True for a TCP socket that has received segments, asked of one with no
/// peer: its connection is over. A reset from the peer (a RST, or a FIN and
/// then a RST for what we sent after it) or a timeout left it in TCP_CLOSE,
/// where getpeername answers ENOTCONN but getsockname still gives the
/// address it was accepted on. A socket only bound (to a listener's address
/// with SO_REUSEPORT, say, before it listens) is in TCP_CLOSE too, but has
/// received nothing. Not TCP, or no tcpi_segs_in (before Linux 4.2): false.
#[cfg(target_os = "linux")]
fn was_connected(fd: RawFd) -> bool {
    sys::tcp_info_segs_in(fd).is_some_and(|segs_in| segs_in > 0)
}

/// Elsewhere a socket with no peer is never taken for a client.
#[cfg(not(target_os = "linux"))]
fn was_connected(_fd: RawFd) -> bool {
    false
}

pub fn classify(probes: Vec<Probe>, in_flight: &[RawFd], listeners: Listeners) -> Vec<Socket> {
    let open: Vec<SockAddr> = probes
        .iter()
        .filter(|p| p.listening && listeners.includes(&p.local))
        .map(|p| p.local.clone())
        .collect();
    probes
        .into_iter()
        .map(|p| {
            let kind = kind_of(&p, in_flight.contains(&p.fd), &open);
            Socket {
                fd: p.fd,
                kind,
                local: p.local,
                remote: p.remote.unwrap_or(SockAddr::Unnamed),
            }
        })
        .collect()
}

/// What a probed socket is, given whether it is a request's in flight
/// and the addresses of the listeners open whose connections are clients.
pub fn kind_of(p: &Probe, in_flight: bool, listeners: &[SockAddr]) -> Kind {
    let accepted = || in_flight || listeners.iter().any(|l| p.local.accepted_by(l));
    match (&p.remote, p.stream, p.listening) {
        (_, false, _) => Kind::Datagram,
        (_, true, true) => Kind::Listener,
        (Some(_), true, false) if accepted() => Kind::Client,
        (Some(_), true, false) => Kind::Connected,
        // Reset by its peer: accepted all the same.
        (None, true, false) if p.was_connected && accepted() => Kind::Client,
        (None, true, false) => Kind::Unconnected,
    }
}

/// SO_TYPE: SOCK_STREAM, SOCK_DGRAM, ...
pub fn socket_type(fd: RawFd) -> Result<libc::c_int, Errno> {
    int_sockopt(fd, libc::SO_TYPE)
}

fn int_sockopt(fd: RawFd, opt: libc::c_int) -> Result<libc::c_int, Errno> {
    sys::getsockopt_int(fd, libc::SOL_SOCKET, opt)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    fn inet(s: &str) -> SockAddr {
        SockAddr::Inet(s.parse().unwrap())
    }

    fn server_at(address: SockAddr) -> ServerListeners {
        ServerListeners {
            addresses: vec![address],
            sockets: Vec::new(),
        }
    }

    fn stream(fd: RawFd, local: SockAddr, remote: Option<SockAddr>) -> Probe {
        Probe {
            fd,
            stream: true,
            listening: false,
            local,
            remote,
            was_connected: false,
        }
    }

    /// A TCP connection its peer reset: no peer, segments received.
    fn reset(fd: RawFd, local: SockAddr) -> Probe {
        Probe {
            was_connected: true,
            ..stream(fd, local, None)
        }
    }

    fn listener(fd: RawFd, local: SockAddr) -> Probe {
        Probe {
            listening: true,
            ..stream(fd, local, None)
        }
    }

    fn kinds(probes: Vec<Probe>, in_flight: &[RawFd]) -> Vec<(RawFd, Kind)> {
        classify(probes, in_flight, Listeners::Open)
            .into_iter()
            .map(|s| (s.fd, s.kind))
            .collect()
    }

    #[test]
    fn accepted_outbound_and_unconnected() {
        let probes = vec![
            listener(3, inet("0.0.0.0:8080")),
            stream(4, inet("127.0.0.1:8080"), Some(inet("127.0.0.1:50000"))),
            stream(5, inet("127.0.0.1:50001"), Some(inet("127.0.0.1:5432"))),
            stream(6, inet("0.0.0.0:0"), None),
            Probe {
                stream: false,
                ..stream(7, inet("127.0.0.1:53"), None)
            },
        ];
        assert_eq!(
            kinds(probes, &[]),
            vec![
                (3, Kind::Listener),
                (4, Kind::Client),
                (5, Kind::Connected),
                (6, Kind::Unconnected),
                (7, Kind::Datagram),
            ]
        );
    }

    #[test]
    fn without_a_listener_nothing_is_a_client_unless_in_flight() {
        let probes = vec![
            stream(4, inet("127.0.0.1:8080"), Some(inet("127.0.0.1:50000"))),
            stream(5, SockAddr::Unnamed, Some(SockAddr::Unnamed)),
        ];
        assert_eq!(
            kinds(probes.clone(), &[]),
            vec![(4, Kind::Connected), (5, Kind::Connected)]
        );
        assert_eq!(
            kinds(probes, &[4, 5]),
            vec![(4, Kind::Client), (5, Kind::Client)]
        );
    }

    #[test]
    fn a_server_s_address_whose_listener_closed_explains_nothing() {
        let probes = vec![
            stream(4, inet("127.0.0.1:8080"), Some(inet("127.0.0.1:50000"))),
            stream(5, inet("127.0.0.1:8080"), Some(inet("127.0.0.1:5432"))),
        ];
        let server = server_at(inet("0.0.0.0:8080"));
        assert_eq!(
            classify(probes, &[4], Listeners::Server(&server))
                .into_iter()
                .map(|s| (s.fd, s.kind))
                .collect::<Vec<_>>(),
            vec![(4, Kind::Client), (5, Kind::Connected)]
        );
    }

    #[test]
    fn only_the_server_s_listeners_explain_clients_in_its_scope() {
        let preloader = || SockAddr::Unix(b"/run/preloader.sock".to_vec());
        let probes = vec![
            listener(3, inet("127.0.0.1:8080")),
            listener(4, preloader()),
            stream(5, inet("127.0.0.1:8080"), Some(inet("127.0.0.1:50000"))),
            stream(6, preloader(), Some(SockAddr::Unnamed)),
            stream(7, inet("127.0.0.1:9090"), Some(inet("127.0.0.1:50001"))),
        ];
        let server = server_at(inet("127.0.0.1:8080"));
        assert_eq!(
            classify(probes, &[7], Listeners::Server(&server))
                .into_iter()
                .map(|s| (s.fd, s.kind))
                .collect::<Vec<_>>(),
            vec![
                (3, Kind::Listener),
                (4, Kind::Listener),
                (5, Kind::Client),
                (6, Kind::Connected),
                (7, Kind::Client),
            ]
        );
        assert!(!Listeners::Server(&server).includes(&preloader()));
        assert!(Listeners::Open.includes(&preloader()));
    }

    #[test]
    fn being_in_flight_does_not_make_a_listener_or_datagram_a_client() {
        let probes = vec![
            listener(3, inet("127.0.0.1:80")),
            Probe {
                stream: false,
                ..stream(4, inet("127.0.0.1:53"), Some(inet("127.0.0.1:9")))
            },
        ];
        assert_eq!(
            kinds(probes, &[3, 4]),
            vec![(3, Kind::Listener), (4, Kind::Datagram)]
        );
    }

    #[test]
    fn unix_accepted_socket_reports_the_listener_path() {
        let path = SockAddr::Unix(b"/tmp/app.sock".to_vec());
        let probes = vec![
            listener(3, path.clone()),
            stream(4, path, Some(SockAddr::Unnamed)),
            stream(
                5,
                SockAddr::Unnamed,
                Some(SockAddr::Unix(b"/tmp/app.sock".to_vec())),
            ),
        ];
        assert_eq!(
            kinds(probes, &[]),
            vec![(3, Kind::Listener), (4, Kind::Client), (5, Kind::Connected)]
        );
    }

    #[test]
    fn real_tcp_sockets() {
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let outbound = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let (accepted, _) = server.accept().unwrap();
        let table = sockets(&[], Listeners::Open);
        let kind_of = |fd: RawFd| table.iter().find(|s| s.fd == fd).map(|s| s.kind);
        assert_eq!(kind_of(server.as_raw_fd()), Some(Kind::Listener));
        assert_eq!(kind_of(accepted.as_raw_fd()), Some(Kind::Client));
        assert_eq!(kind_of(outbound.as_raw_fd()), Some(Kind::Connected));
        let (reader, _writer) = nix::unistd::pipe().unwrap();
        assert_eq!(probe(reader.as_raw_fd()), None);
    }

    #[test]
    fn reset_clients_are_clients_and_sockets_only_bound_are_not() {
        let probes = vec![
            listener(3, inet("127.0.0.1:8080")),
            listener(4, inet("0.0.0.0:9090")),
            listener(5, inet("[::]:7070")),
            reset(6, inet("127.0.0.1:8080")),
            reset(7, inet("10.0.0.5:9090")),
            reset(8, inet("[::ffff:127.0.0.1]:7070")),
            // Bound with SO_REUSEPORT, not yet listening.
            stream(9, inet("127.0.0.1:8080"), None),
            stream(10, inet("127.0.0.1:9090"), None),
            stream(11, inet("0.0.0.0:9090"), None),
            // An outbound connection reset, from its ephemeral port.
            reset(12, inet("127.0.0.1:40000")),
            // Never a dialed address, whatever the socket went through.
            reset(13, inet("0.0.0.0:9090")),
        ];
        assert_eq!(
            kinds(probes, &[]),
            vec![
                (3, Kind::Listener),
                (4, Kind::Listener),
                (5, Kind::Listener),
                (6, Kind::Client),
                (7, Kind::Client),
                (8, Kind::Client),
                (9, Kind::Unconnected),
                (10, Kind::Unconnected),
                (11, Kind::Unconnected),
                (12, Kind::Unconnected),
                (13, Kind::Unconnected),
            ]
        );
    }

    #[test]
    fn a_reset_client_in_flight_is_a_client_without_a_listener() {
        let probes = vec![
            reset(4, inet("127.0.0.1:8080")),
            stream(5, inet("127.0.0.1:8080"), None),
        ];
        assert_eq!(
            kinds(probes.clone(), &[]),
            vec![(4, Kind::Unconnected), (5, Kind::Unconnected)]
        );
        assert_eq!(
            kinds(probes, &[4, 5]),
            vec![(4, Kind::Client), (5, Kind::Unconnected)]
        );
    }

    /// A TCP socket bound to `addr` with SO_REUSEPORT, not yet listening.
    pub(crate) fn reuseport(addr: &nix::sys::socket::SockaddrIn) -> std::os::fd::OwnedFd {
        use nix::sys::socket::{bind, setsockopt, socket, sockopt};
        use nix::sys::socket::{AddressFamily, SockFlag, SockType};
        let fd = socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )
        .unwrap();
        setsockopt(&fd, sockopt::ReusePort, &true).unwrap();
        bind(fd.as_raw_fd(), addr).unwrap();
        fd
    }

    #[test]
    fn real_reset_client_and_reuseport_socket_not_yet_listening() {
        use nix::sys::socket::{listen, setsockopt, sockopt, Backlog, SockaddrIn};
        let server = reuseport(&"127.0.0.1:0".parse().unwrap());
        listen(&server, Backlog::new(8).unwrap()).unwrap();
        let server = TcpListener::from(server);
        let addr: SockaddrIn = getsockname(server.as_raw_fd()).unwrap();
        let not_yet_listening = reuseport(&addr);
        let outbound = TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let (accepted, _) = server.accept().unwrap();
        // SO_LINGER {on, 0}: the close sends a RST, not a FIN.
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        setsockopt(&outbound, sockopt::Linger, &linger).unwrap();
        drop(outbound);
        let no_peer =
            || getpeername::<SockaddrStorage>(accepted.as_raw_fd()) == Err(Errno::ENOTCONN);
        for _ in 0..500 {
            if no_peer() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(no_peer());
        let fds = [&server as &dyn AsRawFd, &accepted, &not_yet_listening];
        let table = sockets_among(
            fds.iter().map(|f| f.as_raw_fd()).collect(),
            &[],
            Listeners::Open,
        );
        let kinds: Vec<Kind> = table.iter().map(|s| s.kind).collect();
        assert_eq!(kinds, vec![Kind::Listener, Kind::Client, Kind::Unconnected]);
        assert_eq!(table[1].local, SockAddr::Inet(server.local_addr().unwrap()));
        assert_eq!(table[1].remote, SockAddr::Unnamed);
    }

    #[test]
    fn real_datagram_and_socketpair_sockets() {
        use std::net::UdpSocket;
        use std::os::unix::net::{UnixDatagram, UnixStream};
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let connected_udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        connected_udp.connect(udp.local_addr().unwrap()).unwrap();
        let (pair, _other) = UnixStream::pair().unwrap();
        let (datagram_pair, _other_end) = UnixDatagram::pair().unwrap();
        let kind_of =
            |fd: RawFd| probe(fd).map(|p| classify(vec![p], &[fd], Listeners::Open)[0].kind);
        assert_eq!(kind_of(udp.as_raw_fd()), Some(Kind::Datagram));
        assert_eq!(kind_of(connected_udp.as_raw_fd()), Some(Kind::Datagram));
        assert_eq!(kind_of(datagram_pair.as_raw_fd()), Some(Kind::Datagram));
        // In flight, a connected stream socket is a client.
        assert_eq!(kind_of(pair.as_raw_fd()), Some(Kind::Client));
    }
}
