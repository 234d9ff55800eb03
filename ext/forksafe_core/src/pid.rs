//! This process's pid, without a syscall each time it is asked.
//!
//! State here is stamped with the pid that made it (a child must not take
//! its parent's for its own), so the pid is asked on every request, twice
//! or more, and getpid(2) is a syscall each time (glibc no longer caches
//! it): 0.1-0.2 us in a VM. A pid changes only across fork, whose child
//! handler (see `atfork`) learns the new one before anything else runs. A
//! process made with a bare clone(2) or vfork(2) runs none of this code
//! before it execs.

use std::sync::atomic::{AtomicI32, Ordering};

use crate::sys;

static PID: AtomicI32 = AtomicI32::new(0);

pub fn this_process() -> libc::pid_t {
    match PID.load(Ordering::Relaxed) {
        0 => forked(),
        pid => pid,
    }
}

/// In a child, first thing: its own pid.
pub fn forked() -> libc::pid_t {
    let pid = sys::getpid();
    PID.store(pid, Ordering::Relaxed);
    pid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_the_process_s() {
        assert_eq!(this_process(), std::process::id() as libc::pid_t);
        assert_eq!(forked(), this_process());
    }
}
