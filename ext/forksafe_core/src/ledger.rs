//! What a process knows of its own forks: how many it made and, in a child,
//! the report of its pass.
//!
//! A child inherits its parent's copy of this memory. The ledger is stamped
//! with the pid it belongs to, so a child starts a fresh one the first time
//! it looks, without anyone clearing the parent's: in a fresh child every
//! page written is a page copied.

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::pass::PassReport;

pub struct OwnPass {
    pub report: PassReport,
    pub took: Duration,
}

pub struct Ledger {
    pid: libc::pid_t,
    forks: u64,
    own_pass: Option<OwnPass>,
}

/// Every call into the bindings holds Ruby's GVL and none releases it, so
/// no other thread is inside this lock when the process forks.
static LEDGER: Mutex<Ledger> = Mutex::new(Ledger::new(0));

/// This process's ledger.
pub fn ledger() -> MutexGuard<'static, Ledger> {
    // A panic while it was held left nothing half-written worth refusing.
    let mut ledger = LEDGER.lock().unwrap_or_else(|e| e.into_inner());
    ledger.belong_to(std::process::id() as libc::pid_t);
    ledger
}

impl Ledger {
    const fn new(pid: libc::pid_t) -> Self {
        Self {
            pid,
            forks: 0,
            own_pass: None,
        }
    }

    /// The parent's entries are none of a child's business.
    fn belong_to(&mut self, pid: libc::pid_t) {
        if self.pid != pid {
            *self = Self::new(pid);
        }
    }

    pub fn count_fork(&mut self) {
        self.forks += 1;
    }

    /// Runs `pass` unless this process has made its pass already: the fork
    /// hook and ForkSafe.fork may both ask. The report is kept either way.
    pub fn pass_once(&mut self, pass: impl FnOnce() -> OwnPass) -> Option<&OwnPass> {
        if self.own_pass.is_some() {
            return None;
        }
        self.own_pass = Some(pass());
        self.own_pass.as_ref()
    }

    pub fn forks(&self) -> u64 {
        self.forks
    }

    pub fn own_pass(&self) -> Option<&OwnPass> {
        self.own_pass.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass_of(clients: Vec<i32>) -> OwnPass {
        OwnPass {
            report: PassReport {
                clients,
                ..PassReport::default()
            },
            took: Duration::from_micros(5),
        }
    }

    #[test]
    fn a_process_passes_once() {
        let mut ledger = Ledger::new(10);
        assert!(ledger.pass_once(|| pass_of(vec![4])).is_some());
        assert!(ledger
            .pass_once(|| panic!("a second pass in one process"))
            .is_none());
        assert_eq!(ledger.own_pass().unwrap().report.clients, vec![4]);
    }

    #[test]
    fn a_child_starts_a_fresh_ledger() {
        let mut ledger = Ledger::new(10);
        ledger.count_fork();
        ledger.count_fork();
        ledger.pass_once(|| pass_of(vec![4]));
        ledger.belong_to(10);
        assert_eq!(ledger.forks(), 2);
        ledger.belong_to(11);
        assert_eq!(ledger.forks(), 0);
        assert!(ledger.own_pass().is_none());
        assert!(ledger.pass_once(|| pass_of(vec![5])).is_some());
    }

    #[test]
    fn the_shared_ledger_is_this_process_s() {
        let mut ledger = ledger();
        let before = ledger.forks();
        ledger.count_fork();
        assert_eq!(ledger.forks(), before + 1);
        assert_eq!(ledger.pid, std::process::id() as libc::pid_t);
    }
}
