//! The native core of unicorn-forksafe, knowing no Ruby: what each socket of
//! the process is (`classify`), how a child drops its references to clients
//! and listeners (`neutralize`, `pass`), and what a process keeps for its
//! children and knows of its own forks (`kit`, `ledger`). Every raw call
//! into the C library is made in `sys`, each behind a small safe wrapper
//! whose `unsafe` block says why it is sound (the other modules call nix's
//! safe functions, and hold no `unsafe` but `fork_lock`'s, the lock
//! itself, and a test's fork). The bindings in
//! `forksafe_native` are the only code that knows Ruby.
//!
//! Linux only: the child's pass rests on `dup3`, `SOCK_CLOEXEC`,
//! `TCP_INFO`, `/proc` and `getdents64`, and on what Linux reports of an
//! accepted socket. Elsewhere the crate is one `compile_error!` naming the
//! platform, not errors deep in its modules; the gem does not build it
//! there (extconf.rb writes a Makefile that builds nothing) and runs with
//! fork protection off (lib/unicorn/forksafe/native_stand_in.rb).

#![deny(clippy::undocumented_unsafe_blocks)]

// The platform named in the message below.
#[cfg(target_os = "macos")]
macro_rules! platform {
    () => {
        "macOS"
    };
}
#[cfg(target_os = "freebsd")]
macro_rules! platform {
    () => {
        "FreeBSD"
    };
}
#[cfg(target_os = "openbsd")]
macro_rules! platform {
    () => {
        "OpenBSD"
    };
}
#[cfg(target_os = "netbsd")]
macro_rules! platform {
    () => {
        "NetBSD"
    };
}
#[cfg(not(any(
    target_os = "linux",
    target_os = "macos",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "netbsd"
)))]
macro_rules! platform {
    () => {
        "not Linux"
    };
}

#[cfg(not(target_os = "linux"))]
compile_error!(concat!(
    "forksafe_core builds for Linux only (the child's pass uses dup3, SOCK_CLOEXEC, TCP_INFO ",
    "and /proc), and this target is ",
    platform!(),
    ". unicorn-forksafe installs here without it: `gem install` builds no Rust on this ",
    "platform, and the gem runs with fork protection off (shutdown before close still works, ",
    "ForkSafe.fork is a plain fork)."
));

/// Declares the crate's modules, each built on Linux only.
macro_rules! linux_only {
    ($($vis:vis mod $name:ident;)*) => {
        $(
            #[cfg(target_os = "linux")]
            $vis mod $name;
        )*
    };
}

linux_only! {
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
    mod sys;
}
