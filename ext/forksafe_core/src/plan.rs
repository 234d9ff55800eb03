//! What a child's pass is to do, decided in the parent before it forks.
//!
//! The child's pass runs inside fork (see `atfork`), where no Ruby may run,
//! so Ruby arms the plan for the forks its thread is about to make, and
//! disarms it after. A fork nobody armed for (from C, or from a thread the
//! plan is not for) is an app's fork. What a plan does follows from the
//! role of the process that forks (see `role`): where the gem knows no
//! server, only the pass asked for is made.

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::pid::this_process;
use crate::role::Role;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Asked for (`ForkSafe.fork`), whatever the role: neutralize clients,
    /// and listeners if `release_listeners`; leave the sockets in `keep`
    /// alone.
    Pass {
        keep: Vec<RawFd>,
        release_listeners: bool,
    },
    /// The server's own fork (a worker, a mold, a new master): clients
    /// neutralized, listeners kept; the child is a master.
    ServerOwn,
    /// Any other fork: app code, in a server's process.
    AppFork,
    /// Touch nothing: the child is the caller going on (Process.daemon), or
    /// a program about to be exec'd with what it was handed. It holds for
    /// the child's own forks too (daemon forks twice).
    NoPass,
}

/// What the child's pass does, and the child's role after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForChild {
    /// None: no pass.
    pub pass: Option<ChildPass>,
    pub role: Role,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChildPass {
    pub keep: Vec<RawFd>,
    pub release_listeners: bool,
    /// Only the server's listeners, and connections accepted on them or
    /// in flight, count (a fork of a server's process); else every
    /// listener's (a pass asked for).
    pub server_only: bool,
}

impl ChildPass {
    fn of_role(release_listeners: bool) -> Self {
        Self {
            keep: Vec::new(),
            release_listeners,
            server_only: true,
        }
    }
}

impl Plan {
    /// What this plan does in a child of a process of role `parent`: the
    /// one place the policy table is written.
    pub fn for_child(self, parent: Role) -> ForChild {
        let has_role = parent != Role::Unknown;
        match self {
            Plan::Pass {
                keep,
                release_listeners,
            } => ForChild {
                pass: Some(ChildPass {
                    keep,
                    release_listeners,
                    server_only: false,
                }),
                role: Role::Unknown,
            },
            Plan::ServerOwn => ForChild {
                pass: has_role.then(|| ChildPass::of_role(false)),
                role: if has_role { Role::Master } else { Role::Unknown },
            },
            Plan::AppFork => ForChild {
                pass: has_role.then(|| ChildPass::of_role(true)),
                role: Role::Unknown,
            },
            Plan::NoPass => ForChild {
                pass: None,
                role: parent,
            },
        }
    }
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
/// Whether forks nobody planned are the app's (the fork hook is on); else
/// they make no pass.
static PASS_UNPLANNED: AtomicBool = AtomicBool::new(false);

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

/// Whether the fork hook is on: the one place that says so.
pub fn passes_unplanned() -> bool {
    PASS_UNPLANNED.load(Ordering::Relaxed)
}

/// In a child, inside fork: the plan its parent armed on the forking
/// thread, or else the plan of a fork nobody planned. A NoPass plan is
/// made the child's own, for its forks. A fork that interrupted this
/// thread's arming (from a signal handler) finds the stack borrowed, and
/// takes the plan nobody armed.
pub fn for_fork_of(parent: libc::pid_t) -> Plan {
    armed_for_child(parent).unwrap_or_else(unplanned)
}

fn armed_for_child(parent: libc::pid_t) -> Option<Plan> {
    ARMED.with(|armed| {
        let mut armed = armed.try_borrow_mut().ok()?;
        let ours = armed.last_mut().filter(|a| a.pid == parent)?;
        if ours.plan == Plan::NoPass {
            ours.pid = this_process();
        }
        Some(ours.plan.clone())
    })
}

fn unplanned() -> Plan {
    if passes_unplanned() {
        Plan::AppFork
    } else {
        Plan::NoPass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_table() {
        let pass = |keep: Vec<RawFd>, release_listeners, server_only| {
            Some(ChildPass {
                keep,
                release_listeners,
                server_only,
            })
        };
        for parent in [Role::Master, Role::Serving] {
            assert_eq!(
                Plan::AppFork.for_child(parent),
                ForChild {
                    pass: pass(vec![], true, true),
                    role: Role::Unknown
                }
            );
            assert_eq!(
                Plan::ServerOwn.for_child(parent),
                ForChild {
                    pass: pass(vec![], false, true),
                    role: Role::Master
                }
            );
            assert_eq!(Plan::NoPass.for_child(parent).role, parent);
        }
        // Where no server is known, only the pass asked for is made.
        for plan in [Plan::AppFork, Plan::ServerOwn, Plan::NoPass] {
            assert_eq!(
                plan.for_child(Role::Unknown),
                ForChild {
                    pass: None,
                    role: Role::Unknown
                }
            );
        }
        let asked = Plan::Pass {
            keep: vec![7],
            release_listeners: false,
        };
        for parent in [Role::Unknown, Role::Master, Role::Serving] {
            assert_eq!(
                asked.clone().for_child(parent),
                ForChild {
                    pass: pass(vec![7], false, false),
                    role: Role::Unknown
                }
            );
        }
    }

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
        assert_eq!(for_fork_of(me), Plan::NoPass);
        pass_unplanned(true);
        assert_eq!(for_fork_of(me), Plan::AppFork);
        // Interrupted while arming: the stack is borrowed.
        ARMED.with(|armed| {
            let _arming = armed.borrow_mut();
            assert_eq!(for_fork_of(me), Plan::AppFork);
        });
        pass_unplanned(false);
    }
}
