//! The child's pass inside fork(2) itself.
//!
//! glibc runs pthread_atfork child handlers in the child before fork
//! returns, after it has made malloc usable again, and so before any code
//! of the caller: another library's `Process._fork` hook, the rest of a C
//! extension's fork, the app. Every fork of the process comes through here,
//! from Ruby or from C. The handlers call no Ruby and take no lock another
//! thread could hold (see `fork_lock`); the pass is syscalls on plain data
//! armed in advance (see `plan`, `in_flight`).

use std::panic::catch_unwind;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Once;
use std::time::Instant;

use nix::errno::Errno;

use crate::in_flight;
use crate::kit;
use crate::ledger::{self, ledger, OwnPass};
use crate::pass::{child_pass, PassOptions};
use crate::pid;
use crate::plan::{self, Plan};

static INSTALLED: Once = Once::new();
/// The pid of the process about to fork, set in it just before: the child
/// reads its copy. getppid(2) in the child would race with a parent that
/// exits at once (Process.daemon's first fork), and then name init.
static FORKING: AtomicI32 = AtomicI32::new(0);

/// Registers the handlers, once per process image.
pub fn install() -> Result<(), Errno> {
    let mut result = Ok(());
    INSTALLED.call_once(|| {
        // SAFETY: both handlers are functions of this library, which Ruby
        // never unloads.
        let rc = unsafe { libc::pthread_atfork(Some(before), Some(in_parent), Some(in_child)) };
        result = if rc == 0 {
            Ok(())
        } else {
            Err(Errno::from_raw(rc))
        };
    });
    result
}

/// In the parent, on the forking thread: every lock the child will need
/// is taken, so no other thread is halfway through the data it guards when
/// the process is copied (see `fork_lock`).
extern "C" fn before() {
    FORKING.store(pid::this_process(), Ordering::Relaxed);
    in_flight::IN_FLIGHT.hold();
    kit::KIT.hold();
    ledger::LEDGER.hold();
}

fn release_locks() {
    ledger::LEDGER.release();
    kit::KIT.release();
    in_flight::IN_FLIGHT.release();
}

/// The parent counts the fork and mends what it keeps for its children.
extern "C" fn in_parent() {
    release_locks();
    let _ = catch_unwind(|| {
        ledger().count_fork();
        kit::prepare();
    });
}

/// A panic must not unwind into fork's caller: the pass is then left undone.
extern "C" fn in_child() {
    release_locks();
    let _ = catch_unwind(pass_in_child);
}

fn pass_in_child() {
    pid::forked();
    let parent = FORKING.load(Ordering::Relaxed);
    let (requests, registered) = in_flight::of(parent);
    let plan = plan::armed_for_child(parent).or_else(|| plan::unplanned(parent, requests));
    let Some(Plan::Pass {
        keep,
        release_listeners,
    }) = plan
    else {
        return;
    };
    let started = Instant::now();
    let report = child_pass(&PassOptions {
        keep: &keep,
        release_listeners,
        registered: &registered,
        fd_table_size: kit::fd_table_size_of(parent),
        dead_end: kit::inherited_dead_end(),
    });
    ledger().record_pass(OwnPass {
        report,
        took: started.elapsed(),
    });
}
