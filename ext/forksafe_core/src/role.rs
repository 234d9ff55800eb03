//! What this process is to a web server the gem knows, as the Ruby side
//! saw it. The child's pass follows from the role of the process that
//! forks, so a program that serves nothing through a known server forks
//! exactly as it would without the gem.
//!
//! - `Unknown`: no integration, no request marked, nothing declared. A
//!   fork makes no pass unless it was asked for (`ForkSafe.fork`): a
//!   preloader or an inetd-style server hands its child an accepted
//!   connection on purpose.
//! - `Master`: an integration saw the server bind or inherit listeners.
//! - `Serving`: the process serves requests (a worker, single-mode puma, a
//!   process where a request was marked).
//!
//! Roles only rise. A child starts `Unknown`, but for the server's own
//! forks (a worker, a mold), which start `Master`, and the caller going
//! on (`Process.daemon`), which keeps its parent's role.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::kit;
use crate::listeners::{self, Given};
use crate::pid::this_process;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Unknown = 0,
    Master = 1,
    Serving = 2,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Unknown => "unknown",
            Role::Master => "master",
            Role::Serving => "serving",
        }
    }

    fn from_bits(bits: u64) -> Role {
        match bits & 0xff {
            1 => Role::Master,
            2 => Role::Serving,
            _ => Role::Unknown,
        }
    }
}

/// The role, stamped with the pid it belongs to (pid << 8 | role): a child
/// reads its parent's copy, and without a stamp of its own is `Unknown`.
static ROLE: AtomicU64 = AtomicU64::new(0);

fn stamped(pid: libc::pid_t, role: Role) -> u64 {
    ((pid as u32 as u64) << 8) | role as u64
}

/// The role of process `pid`, as this process's memory has it: its own,
/// or in a child inside fork, its parent's.
pub fn of(pid: libc::pid_t) -> Role {
    let bits = ROLE.load(Ordering::Relaxed);
    if bits >> 8 == pid as u32 as u64 {
        Role::from_bits(bits)
    } else {
        Role::Unknown
    }
}

pub fn current() -> Role {
    of(this_process())
}

/// Raises this process's role to `role` if it is lower, and returns the
/// role now. Each call adds the addresses of the server's listeners (see
/// `listeners`): those it gives, or every one open then. The first rise
/// prepares what a server's children need (`kit`).
pub fn rise_to(role: Role, listeners: Given) -> Role {
    let pid = this_process();
    let was = of(pid);
    if role > was {
        ROLE.store(stamped(pid, role), Ordering::Relaxed);
        if was == Role::Unknown {
            kit::prepare();
        }
    }
    listeners::remember(listeners);
    was.max(role)
}

/// In a child, inside fork: its role from here on.
pub(crate) fn set_in_child(role: Role) {
    ROLE.store(stamped(this_process(), role), Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rises_and_never_falls_and_is_the_process_s() {
        let me = this_process();
        let start = current();
        assert_eq!(rise_to(Role::Master, Given::AllOpen), start.max(Role::Master));
        assert!(current() >= Role::Master);
        assert_eq!(rise_to(Role::Serving, Given::AllOpen), Role::Serving);
        assert_eq!(rise_to(Role::Master, Given::AllOpen), Role::Serving);
        assert_eq!(current(), Role::Serving);
        // Another process's memory of it counts for nothing.
        assert_eq!(of(me + 1), Role::Unknown);
        assert_eq!(Role::from_bits(stamped(me, Role::Master)), Role::Master);
    }
}
