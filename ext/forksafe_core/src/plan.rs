//! What a child's pass is to do, decided in the parent before it forks.
//!
//! The child's pass runs inside fork (see `atfork`), where no Ruby may run,
//! so Ruby arms the plan for the forks its thread is about to make, and
//! disarms it after. A fork nobody armed for (from C, or from a thread the
//! plan is not for) gets the plan for forks nobody planned.

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use crate::pid::this_process;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Neutralize clients, and listeners if `release_listeners`; leave the
    /// sockets in `keep` alone.
    Pass {
        keep: Vec<RawFd>,
        release_listeners: bool,
    },
    /// Touch nothing: the child is the caller going on (Process.daemon), or
    /// a program about to be exec'd with what it was handed. It holds for
    /// the child's own forks too (daemon forks twice).
    NoPass,
}

struct Armed {
    pid: libc::pid_t,
    plan: Plan,
}

thread_local! {
    /// The plans armed on this thread, innermost last. The fork handlers
    /// run on the forking thread, so a child reads the plan of the thread
    /// that forked it, whatever other threads armed meanwhile (Ruby may
    /// switch threads between the arming and the fork: a flush of stdout,
    /// another library's _fork hook). A child's one thread is a copy of
    /// the forking one, with its thread-locals.
    static ARMED: RefCell<Vec<Armed>> = const { RefCell::new(Vec::new()) };
}
/// Whether forks nobody planned make a pass (the fork hook is on).
static PASS_UNPLANNED: AtomicBool = AtomicBool::new(false);
/// The process that serves requests: all its forks are app code.
static SERVING: AtomicI32 = AtomicI32::new(0);

/// For the forks the calling thread makes until the matching `disarm`.
pub fn arm(plan: Plan) {
    ARMED.with(|armed| {
        armed.borrow_mut().push(Armed {
            pid: this_process(),
            plan,
        })
    });
}

pub fn disarm() {
    ARMED.with(|armed| armed.borrow_mut().pop());
}

pub fn pass_unplanned(on: bool) {
    PASS_UNPLANNED.store(on, Ordering::Relaxed);
}

/// From now on this process serves requests (not its children: a child
/// serves once it says so itself).
pub fn serving() {
    SERVING.store(this_process(), Ordering::Relaxed);
}

/// In a child, inside fork: the plan its parent armed on the forking
/// thread, if any. A NoPass plan is made the child's own, for its forks.
pub fn armed_for_child(parent: libc::pid_t) -> Option<Plan> {
    ARMED.with(|armed| {
        let mut armed = armed.borrow_mut();
        let ours = armed.last_mut().filter(|a| a.pid == parent)?;
        if ours.plan == Plan::NoPass {
            ours.pid = this_process();
        }
        Some(ours.plan.clone())
    })
}

/// In a child, for a fork nobody planned: None when such forks make no
/// pass; else listeners are released where the parent serves requests, or
/// has requests in flight (registered with their sockets).
pub fn unplanned(parent: libc::pid_t, requests_in_flight: usize) -> Option<Plan> {
    PASS_UNPLANNED.load(Ordering::Relaxed).then(|| Plan::Pass {
        keep: Vec::new(),
        release_listeners: SERVING.load(Ordering::Relaxed) == parent || requests_in_flight > 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the plan is process-wide state.
    #[test]
    fn a_plan_is_for_the_thread_and_process_that_armed_it() {
        let me = this_process();
        let keep = Plan::Pass {
            keep: vec![7],
            release_listeners: true,
        };
        arm(keep.clone());
        // As a child of this process sees it, on the forking thread.
        assert_eq!(armed_for_child(me), Some(keep.clone()));
        // A child of another process, or of another thread, was not planned.
        assert_eq!(armed_for_child(me + 1), None);
        let other = std::thread::spawn(move || armed_for_child(me))
            .join()
            .unwrap();
        assert_eq!(other, None);
        disarm();
        assert_eq!(armed_for_child(me), None);

        arm(Plan::NoPass);
        assert_eq!(armed_for_child(me), Some(Plan::NoPass));
        arm(keep.clone()); // nested: the innermost counts, then the outer again
        assert_eq!(armed_for_child(me), Some(keep.clone()));
        disarm();
        assert_eq!(armed_for_child(me), Some(Plan::NoPass));
        disarm();

        pass_unplanned(false);
        assert_eq!(unplanned(me, 0), None);
        pass_unplanned(true);
        let released = |plan: Option<Plan>| matches!(plan, Some(Plan::Pass { release_listeners, .. }) if release_listeners);
        assert!(!released(unplanned(me, 0)));
        assert!(released(unplanned(me, 1)));
        serving();
        assert!(released(unplanned(me, 0)));
        assert!(!released(unplanned(me + 1, 0)));
        pass_unplanned(false);
    }
}
