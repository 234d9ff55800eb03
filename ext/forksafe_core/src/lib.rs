//! The native core of unicorn-forksafe, knowing no Ruby: what each socket of
//! the process is (`classify`), how a child drops its references to clients
//! and listeners (`neutralize`, `pass`), and what a process keeps for its
//! children and knows of its own forks (`kit`, `ledger`). The bindings in
//! `forksafe_native` are the only code that knows Ruby.

pub mod addr;
pub mod atfork;
pub mod classify;
pub mod fds;
mod fork_lock;
pub mod in_flight;
pub mod kit;
pub mod ledger;
pub mod listeners;
pub mod neutralize;
pub mod pass;
pub mod pid;
pub mod plan;
pub mod role;
