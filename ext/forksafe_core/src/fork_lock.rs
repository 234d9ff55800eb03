//! A lock that the fork handlers hold across fork(2).
//!
//! fork(2) copies memory, locks included, but only the forking thread goes
//! on in the child. A mutex another thread held at that instant would stay
//! held there forever, over data half-written. The child's pass runs inside
//! fork (see `atfork`), and a fork from C may come while a Ruby thread is
//! inside this crate. So the prepare handler takes every such lock, on the
//! forking thread, before the process is copied: the child's copy of each
//! is whole, and held by its own (only) thread, which releases it. The
//! parent releases its own after the fork.
//!
//! A spin lock: every section it guards is a few instructions and an
//! allocation at most, and the handlers must not sleep on a futex another
//! process shares.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub struct ForkLock<T> {
    held: AtomicBool,
    /// The thread holding it (`this_thread`), 0 when none or not said yet.
    owner: AtomicUsize,
    data: UnsafeCell<T>,
}

thread_local! {
    static MARK: u8 = const { 0 };
}

/// A token of the calling thread: the address of its own thread-local, the
/// same in a child for the thread that forked it.
fn this_thread() -> usize {
    MARK.with(|mark| mark as *const u8 as usize)
}

// SAFETY: the data is reached only through a guard, which one thread at a
// time holds (see `lock`).
unsafe impl<T: Send> Sync for ForkLock<T> {}

pub struct Guard<'a, T> {
    lock: &'a ForkLock<T>,
}

impl<T> ForkLock<T> {
    pub const fn new(data: T) -> Self {
        Self {
            held: AtomicBool::new(false),
            owner: AtomicUsize::new(0),
            data: UnsafeCell::new(data),
        }
    }

    pub fn lock(&self) -> Guard<'_, T> {
        self.hold();
        Guard { lock: self }
    }

    /// Takes the lock with no guard: for the prepare handler, which holds it
    /// across the fork until `release` in the parent and in the child.
    pub fn hold(&self) {
        while self
            .held
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::thread::yield_now();
        }
        self.owner.store(this_thread(), Ordering::Relaxed);
    }

    /// Takes the lock unless it stays held for `patience`: for the prepare
    /// handler, whose forking thread may itself hold it (a fork from a
    /// signal handler that interrupted this crate), and so would wait for
    /// ever. False when it was not taken.
    pub fn try_hold(&self, patience: Duration) -> bool {
        self.try_lock(patience).map(std::mem::forget).is_some()
    }

    /// The same, with a guard: the prepare handler may set the data in
    /// order for the child before it forgets the guard, and so holds the
    /// lock across the fork.
    /// Held by this very thread, it is not waited for.
    pub fn try_lock(&self, patience: Duration) -> Option<Guard<'_, T>> {
        let started = Instant::now();
        loop {
            if self
                .held
                .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                self.owner.store(this_thread(), Ordering::Relaxed);
                return Some(Guard { lock: self });
            }
            if self.owner.load(Ordering::Relaxed) == this_thread() || started.elapsed() >= patience {
                return None;
            }
            std::thread::yield_now();
        }
    }

    pub fn release(&self) {
        self.owner.store(0, Ordering::Relaxed);
        self.held.store(false, Ordering::Release);
    }

    /// In a child, for a lock the prepare handler could not take: held at
    /// the fork by another thread, which the child does not have, it would
    /// stay held for ever, and the first use would spin for ever (with
    /// Ruby's GVL: the process deaf even to TERM). What it guards may be
    /// half-written: it is forgotten, not dropped, and `fresh` takes its
    /// place. Held by this thread (a fork from a signal handler that
    /// interrupted it), or by a thread not yet said, it is left alone.
    pub fn mend_in_child(&self, fresh: T) {
        let owner = self.owner.load(Ordering::Relaxed);
        if !self.held.load(Ordering::Relaxed) || owner == 0 || owner == this_thread() {
            return;
        }
        // SAFETY: the child has one thread, this one, and the lock's holder
        // is another, gone with the fork: no reference to the data is live.
        // ptr::write drops nothing of the old value.
        unsafe { std::ptr::write(self.data.get(), fresh) };
        self.release();
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        // SAFETY: the guard is the lock's only holder.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard is the lock's only holder.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.lock.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn threads_take_turns() {
        let lock = Arc::new(ForkLock::new(0u64));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let lock = Arc::clone(&lock);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(*lock.lock(), 40_000);
    }

    #[test]
    fn a_lock_held_too_long_is_not_taken() {
        let lock = ForkLock::new(());
        lock.hold();
        assert!(!lock.try_hold(Duration::from_millis(5)));
        lock.release();
        assert!(lock.try_hold(Duration::from_millis(5)));
        lock.release();
    }

    #[test]
    fn a_held_lock_waits_for_its_release() {
        let lock = Arc::new(ForkLock::new(1u64));
        lock.hold();
        let waiter = {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || *lock.lock())
        };
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished());
        lock.release();
        assert_eq!(waiter.join().unwrap(), 1);
    }
}
