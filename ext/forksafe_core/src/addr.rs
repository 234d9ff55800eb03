//! Socket addresses as the kernel reports them, and the one question the
//! classifier asks of them: was a connection with this local address
//! accepted by a listener bound to that address?

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::ffi::OsStrExt;

use nix::sys::socket::SockaddrStorage;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SockAddr {
    Inet(SocketAddr),
    /// A Unix path, or an abstract name (which starts with a NUL byte).
    Unix(Vec<u8>),
    /// Unbound Unix sockets, socketpairs, and families we do not parse.
    Unnamed,
}

impl SockAddr {
    pub fn from_storage(storage: &SockaddrStorage) -> Self {
        if let Some(v4) = storage.as_sockaddr_in() {
            return SockAddr::Inet(SocketAddr::from(*v4));
        }
        if let Some(v6) = storage.as_sockaddr_in6() {
            return SockAddr::Inet(SocketAddr::from(*v6));
        }
        if let Some(unix) = storage.as_unix_addr() {
            if let Some(path) = unix.path() {
                return SockAddr::Unix(path.as_os_str().as_bytes().to_vec());
            }
            #[cfg(any(target_os = "linux", target_os = "android"))]
            if let Some(name) = unix.as_abstract() {
                let mut bytes = Vec::with_capacity(name.len() + 1);
                bytes.push(0);
                bytes.extend_from_slice(name);
                return SockAddr::Unix(bytes);
            }
        }
        SockAddr::Unnamed
    }

    /// True when a connected socket whose *local* address is `self` was
    /// accepted by a listener bound to `listener`.
    ///
    /// An accepted TCP socket's local address is the listener's port and the
    /// address the client dialed, so a wildcard listener (0.0.0.0 or ::)
    /// matches any address on its port; `::` is dual-stack, so it also
    /// matches IPv4 peers, which the kernel reports as v4-mapped addresses.
    /// A dialed address is never a wildcard: a socket whose local address
    /// is one was only bound. On Linux an accepted Unix socket reports the
    /// listener's own path.
    pub fn accepted_by(&self, listener: &SockAddr) -> bool {
        match (self, listener) {
            (SockAddr::Inet(local), SockAddr::Inet(bound)) => {
                local.port() == bound.port() && ip_accepted_by(local.ip(), bound.ip())
            }
            (SockAddr::Unix(local), SockAddr::Unix(bound)) => local == bound,
            _ => false,
        }
    }
}

fn ip_accepted_by(local: IpAddr, bound: IpAddr) -> bool {
    let local = local.to_canonical();
    if local.is_unspecified() {
        return false;
    }
    match bound.to_canonical() {
        IpAddr::V6(any) if any.is_unspecified() => true,
        IpAddr::V4(any) if any.is_unspecified() => local.is_ipv4(),
        bound => local == bound,
    }
}

/// `127.0.0.1:80`, `[::1]:80`, `/run/app.sock`, `@abstract`, or empty.
impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SockAddr::Inet(addr) => write!(f, "{addr}"),
            SockAddr::Unix(bytes) => match bytes.split_first() {
                Some((0, name)) => write!(f, "@{}", String::from_utf8_lossy(name)),
                _ => write!(f, "{}", String::from_utf8_lossy(bytes)),
            },
            SockAddr::Unnamed => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inet(s: &str) -> SockAddr {
        SockAddr::Inet(s.parse().unwrap())
    }

    fn unix(s: &[u8]) -> SockAddr {
        SockAddr::Unix(s.to_vec())
    }

    #[test]
    fn specific_tcp_listener_matches_same_ip_and_port_only() {
        let listener = inet("127.0.0.1:8080");
        assert!(inet("127.0.0.1:8080").accepted_by(&listener));
        assert!(!inet("127.0.0.1:40312").accepted_by(&listener));
        assert!(!inet("127.0.0.2:8080").accepted_by(&listener));
    }

    #[test]
    fn ipv4_wildcard_matches_any_ipv4_on_its_port() {
        let listener = inet("0.0.0.0:8080");
        assert!(inet("127.0.0.1:8080").accepted_by(&listener));
        assert!(inet("10.1.2.3:8080").accepted_by(&listener));
        assert!(inet("[::ffff:127.0.0.1]:8080").accepted_by(&listener));
        assert!(!inet("[::1]:8080").accepted_by(&listener));
        assert!(!inet("127.0.0.1:8081").accepted_by(&listener));
    }

    #[test]
    fn a_wildcard_local_address_was_never_dialed() {
        assert!(!inet("0.0.0.0:8080").accepted_by(&inet("0.0.0.0:8080")));
        assert!(!inet("[::]:8080").accepted_by(&inet("[::]:8080")));
        assert!(!inet("0.0.0.0:8080").accepted_by(&inet("[::]:8080")));
        assert!(!inet("[::ffff:0.0.0.0]:8080").accepted_by(&inet("0.0.0.0:8080")));
    }

    #[test]
    fn ipv6_wildcard_is_dual_stack() {
        let listener = inet("[::]:8080");
        assert!(inet("[::1]:8080").accepted_by(&listener));
        assert!(inet("[::ffff:127.0.0.1]:8080").accepted_by(&listener));
        assert!(inet("127.0.0.1:8080").accepted_by(&listener));
        assert!(!inet("[::1]:9090").accepted_by(&listener));
    }

    #[test]
    fn v4_mapped_listener_matches_plain_ipv4() {
        let listener = inet("[::ffff:127.0.0.1]:8080");
        assert!(inet("127.0.0.1:8080").accepted_by(&listener));
        assert!(!inet("127.0.0.2:8080").accepted_by(&listener));
    }

    #[test]
    fn specific_ipv6_listener() {
        let listener = inet("[::1]:8080");
        assert!(inet("[::1]:8080").accepted_by(&listener));
        assert!(!inet("127.0.0.1:8080").accepted_by(&listener));
    }

    #[test]
    fn unix_matches_exact_path_or_abstract_name() {
        assert!(unix(b"/tmp/app.sock").accepted_by(&unix(b"/tmp/app.sock")));
        assert!(!unix(b"/tmp/app.sock").accepted_by(&unix(b"/tmp/other.sock")));
        assert!(unix(b"\0name").accepted_by(&unix(b"\0name")));
        assert!(!unix(b"\0name").accepted_by(&unix(b"name")));
    }

    #[test]
    fn families_and_unnamed_never_match() {
        assert!(!SockAddr::Unnamed.accepted_by(&SockAddr::Unnamed));
        assert!(!SockAddr::Unnamed.accepted_by(&unix(b"/tmp/a")));
        assert!(!unix(b"/tmp/a").accepted_by(&inet("0.0.0.0:80")));
        assert!(!inet("127.0.0.1:80").accepted_by(&SockAddr::Unnamed));
    }

    #[test]
    fn display() {
        assert_eq!(inet("127.0.0.1:80").to_string(), "127.0.0.1:80");
        assert_eq!(inet("[::1]:80").to_string(), "[::1]:80");
        assert_eq!(unix(b"/run/app.sock").to_string(), "/run/app.sock");
        assert_eq!(unix(b"\0app").to_string(), "@app");
        assert_eq!(SockAddr::Unnamed.to_string(), "");
    }
}
