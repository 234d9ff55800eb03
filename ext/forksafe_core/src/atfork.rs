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
use std::sync::atomic::{AtomicI32, AtomicU8, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use crate::classify::Listeners;
use crate::in_flight;
use crate::kit;
use crate::ledger::{self, ledger, OwnPass};
use crate::listeners::{self, ServerListeners};
use crate::pass::{child_pass, PassOptions};
use crate::pid;
use crate::plan;
use crate::role::{self, Role};
use crate::sys;

static INSTALLED: Once = Once::new();
/// The pid of the process about to fork, set in it just before: the child
/// reads its copy. getppid(2) in the child would race with a parent that
/// exits at once (Process.daemon's first fork), and then name init.
static FORKING: AtomicI32 = AtomicI32::new(0);
/// Which locks the prepare handler took, one bit each (see `Lock`).
static TAKEN: AtomicU8 = AtomicU8::new(0);
/// How long the prepare handler waits for a lock another thread holds:
/// far longer than any section it guards takes, even with its thread
/// preempted on a loaded machine. One this thread holds is not waited for
/// (see `before`).
const PATIENCE: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
enum Lock {
    InFlight = 1,
    Kit = 2,
    Ledger = 4,
    Listeners = 8,
}

impl Lock {
    const ALL: [Lock; 4] = [Lock::InFlight, Lock::Kit, Lock::Ledger, Lock::Listeners];

    fn try_hold(self) -> bool {
        match self {
            Lock::InFlight => in_flight::IN_FLIGHT
                .try_lock(PATIENCE)
                .map(|mut table| {
                    table.sort_for_fork();
                    // Held across the fork: released in both processes.
                    std::mem::forget(table);
                })
                .is_some(),
            Lock::Kit => kit::KIT.try_hold(PATIENCE),
            Lock::Ledger => ledger::LEDGER.try_hold(PATIENCE),
            Lock::Listeners => listeners::REMEMBERED.try_hold(PATIENCE),
        }
    }

    fn release(self) {
        match self {
            Lock::InFlight => in_flight::IN_FLIGHT.release(),
            Lock::Kit => kit::KIT.release(),
            Lock::Ledger => ledger::LEDGER.release(),
            Lock::Listeners => listeners::REMEMBERED.release(),
        }
    }

    /// In the child, a lock not taken: see `ForkLock::mend_in_child`.
    fn mend(self) {
        match self {
            Lock::InFlight => in_flight::mend_in_child(),
            Lock::Kit => kit::mend_in_child(),
            Lock::Ledger => ledger::mend_in_child(),
            Lock::Listeners => listeners::mend_in_child(),
        }
    }

    /// Taken by the prepare handler of this fork: what it guards is whole,
    /// and no thread of this process is inside it.
    fn taken(self) -> bool {
        TAKEN.load(Ordering::Relaxed) & self as u8 != 0
    }
}

/// Registers the handlers, once per process image.
pub fn install() -> Result<(), Errno> {
    let mut result = Ok(());
    INSTALLED.call_once(|| result = sys::pthread_atfork(before, in_parent, in_child));
    result
}

/// In the parent, on the forking thread: every lock the child will need
/// is taken, so no other thread is halfway through the data it guards when
/// the process is copied (see `fork_lock`). A lock held by this very
/// thread, interrupted inside this crate by a signal whose handler forks,
/// is not waited for: it is left alone, and what it guards goes unused by
/// this fork's handlers (the child falls back to what its role says). One
/// another thread holds past `PATIENCE` is mended in the child.
extern "C" fn before() {
    FORKING.store(pid::this_process(), Ordering::Relaxed);
    let taken = Lock::ALL
        .iter()
        .filter(|lock| lock.try_hold())
        .fold(0, |bits, &lock| bits | lock as u8);
    TAKEN.store(taken, Ordering::Relaxed);
}

fn release_locks() {
    Lock::ALL
        .iter()
        .filter(|lock| lock.taken())
        .for_each(|lock| lock.release());
}

/// The parent counts the fork and, if it is a server's, mends what it
/// keeps for its children.
extern "C" fn in_parent() {
    release_locks();
    let _ = catch_unwind(|| {
        if Lock::Ledger.taken() {
            ledger().count_fork();
        }
        if Lock::Kit.taken() && role::current() != Role::Unknown {
            kit::prepare();
        }
    });
}

/// A panic must not unwind into fork's caller: the pass is then left undone.
extern "C" fn in_child() {
    release_locks();
    Lock::ALL
        .iter()
        .filter(|lock| !lock.taken())
        .for_each(|lock| lock.mend());
    let _ = catch_unwind(pass_in_child);
}

fn pass_in_child() {
    pid::forked();
    let parent = FORKING.load(Ordering::Relaxed);
    let planned = plan::for_fork_of(parent).for_child(role::of(parent));
    role::set_in_child(planned.role);
    if planned.role == Role::Master && Lock::Listeners.taken() {
        listeners::adopt(parent);
    }
    let Some(pass) = planned.pass else {
        return;
    };
    // Without a table, what it holds goes unknown: a request's socket is
    // then a client only if a listener explains it, and without the
    // server's addresses none does.
    let in_flight = Lock::InFlight.taken().then(in_flight::table);
    let remembered = Lock::Listeners.taken().then(listeners::remembered);
    let no_listeners = ServerListeners::default();
    let (fd_table_size, dead_end) = if Lock::Kit.taken() {
        (kit::fd_table_size_of(parent), kit::inherited_dead_end())
    } else {
        (None, None)
    };
    let started = Instant::now();
    let report = child_pass(&PassOptions {
        keep: &pass.keep,
        release_listeners: pass.release_listeners,
        in_flight: in_flight.as_ref().map_or(&[], |table| table.of(parent)),
        listeners: if pass.server_only {
            Listeners::Server(remembered.as_ref().and_then(|r| r.of(parent)).unwrap_or(&no_listeners))
        } else {
            Listeners::Open
        },
        fd_table_size,
        dead_end,
    });
    if Lock::Ledger.taken() {
        ledger().record_pass(OwnPass {
            report,
            took: started.elapsed(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As a fork from a signal handler that interrupted this thread inside
    /// the core finds it: the lock is held by the forking thread itself.
    #[test]
    fn a_fork_whose_own_thread_holds_a_lock_goes_on_without_it() {
        install().unwrap();
        in_flight::IN_FLIGHT.hold();
        let started = Instant::now();
        // SAFETY: test-only. The test runner's other threads are not copied:
        // after the handlers, the child only loads an atomic and calls
        // _exit, both async-signal-safe, touching no lock or heap they hold.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: ends the child at once, running no destructor or exit
            // handler on the memory it shares copy-on-write with the test's.
            unsafe { libc::_exit(i32::from(Lock::InFlight.taken())) };
        }
        let took = started.elapsed();
        assert!(!Lock::InFlight.taken());
        in_flight::IN_FLIGHT.release();
        let mut status = 0;
        // SAFETY: test-only. Waits for the child just forked; the kernel
        // writes its status into `status`, a local int.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(libc::WEXITSTATUS(status), 0);
        assert!(took < Duration::from_secs(1), "{took:?}");
    }

    /// Another thread holds a lock past the prepare handler's patience (a
    /// thread preempted on a loaded machine): the child, which has no such
    /// thread, still gets the lock, and what it guards afresh.
    #[test]
    fn a_lock_another_thread_holds_through_the_fork_is_mended_in_the_child() {
        install().unwrap();
        let (held, hold) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let ledger = ledger::LEDGER.lock();
            held.send(()).unwrap();
            std::thread::sleep(PATIENCE + Duration::from_millis(500));
            drop(ledger);
        });
        hold.recv().unwrap();
        // SAFETY: test-only, as above; the child takes a spin lock of its
        // own memory and _exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let got = ledger::LEDGER.try_lock(Duration::from_millis(100)).is_some();
            // SAFETY: ends the child at once, as above.
            unsafe { libc::_exit(i32::from(!got)) };
        }
        holder.join().unwrap();
        let mut status = 0;
        // SAFETY: test-only, as above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert_eq!(libc::WEXITSTATUS(status), 0);
    }
}
