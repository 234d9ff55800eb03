//! A lock that a forked child can always take.
//!
//! fork(2) copies memory, locks included, but only the forking thread goes
//! on in the child. A mutex another thread held at that instant stays held
//! there forever, and the data it guarded may be half-written. The child's
//! pass runs inside fork (see `atfork`), where nothing may block, and a fork
//! from C may come while a Ruby thread is inside this crate.
//!
//! So the lock word is the pid of the process whose thread holds it. A word
//! naming another process is a holder gone with the fork: the child takes
//! the lock over and starts the data afresh (the torn copy is leaked, never
//! read or dropped). Within one process it is a plain spin lock; every
//! section it guards is a few instructions and an allocation at most.

use std::cell::UnsafeCell;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicI32, Ordering};

use crate::pid::this_process;

pub struct ForkLock<T> {
    holder: AtomicI32,
    data: UnsafeCell<T>,
    fresh: fn() -> T,
}

// SAFETY: the data is reached only through a guard, which one thread at a
// time holds (see `lock`).
unsafe impl<T: Send> Sync for ForkLock<T> {}

pub struct Guard<'a, T> {
    lock: &'a ForkLock<T>,
}

impl<T> ForkLock<T> {
    /// `fresh` makes the data a process starts with when it took the lock
    /// over from a holder of its parent's.
    pub const fn new(data: T, fresh: fn() -> T) -> Self {
        Self {
            holder: AtomicI32::new(0),
            data: UnsafeCell::new(data),
            fresh,
        }
    }

    pub fn lock(&self) -> Guard<'_, T> {
        let me = this_process();
        loop {
            match self
                .holder
                .compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Guard { lock: self },
                Err(holder) if holder != me => {
                    if self
                        .holder
                        .compare_exchange(holder, me, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        // SAFETY: no thread of this process holds the lock
                        // (it names another process), and this one does
                        // now; the old value is forgotten, not dropped.
                        unsafe { std::ptr::write(self.data.get(), (self.fresh)()) };
                        return Guard { lock: self };
                    }
                }
                Err(_) => std::thread::yield_now(),
            }
        }
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
        self.lock.holder.store(0, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn threads_of_one_process_take_turns() {
        let lock = Arc::new(ForkLock::new(0u64, || 0));
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
    fn a_holder_of_another_process_is_taken_over_with_fresh_data() {
        let lock = ForkLock::new(vec![1, 2, 3], Vec::new);
        // As a child sees a lock its parent's thread held at fork.
        // SAFETY: getppid has no arguments and cannot fail.
        let parent = unsafe { libc::getppid() };
        lock.holder.store(parent, Ordering::Relaxed);
        assert!(lock.lock().is_empty());
        // Released by the guard: free again.
        assert_eq!(lock.holder.load(Ordering::Relaxed), 0);
    }
}
