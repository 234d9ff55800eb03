//! What a process knows of its own forks: how many it made and, in a child,
//! the report of its pass.
//!
//! A child inherits its parent's copy of this memory. The ledger is stamped
//! with the pid it belongs to, so a child starts a fresh one the first time
//! it looks, without anyone clearing the parent's: in a fresh child every
//! page written is a page copied.

use std::time::Duration;

use crate::fork_lock::{ForkLock, Guard};
use crate::pass::PassReport;
use crate::pid::this_process;

pub struct OwnPass {
    pub report: PassReport,
    pub took: Duration,
}

pub struct Ledger {
    pid: libc::pid_t,
    forks: u64,
    own_pass: Option<OwnPass>,
}

/// Written by the fork handlers inside fork; see `fork_lock`.
pub(crate) static LEDGER: ForkLock<Ledger> = ForkLock::new(Ledger::new(0));

/// In a child whose parent's ledger was being written at the fork: a fresh one.
pub(crate) fn mend_in_child() {
    LEDGER.mend_in_child(Ledger::new(0));
}

/// This process's ledger.
pub fn ledger() -> Guard<'static, Ledger> {
    let mut ledger = LEDGER.lock();
    ledger.belong_to(this_process());
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

    /// The report of this process's pass, made inside the fork that made it.
    pub fn record_pass(&mut self, pass: OwnPass) {
        self.own_pass = Some(pass);
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
    fn a_child_starts_a_fresh_ledger() {
        let mut ledger = Ledger::new(10);
        ledger.count_fork();
        ledger.count_fork();
        ledger.record_pass(pass_of(vec![4]));
        ledger.belong_to(10);
        assert_eq!(ledger.forks(), 2);
        assert_eq!(ledger.own_pass().unwrap().report.clients, vec![4]);
        ledger.belong_to(11);
        assert_eq!(ledger.forks(), 0);
        assert!(ledger.own_pass().is_none());
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
