//! Ruby bindings for `ForkSafe::Native`: the only file that knows Ruby.
//!
//! Every entry point converts its arguments with a message naming the bad
//! one, runs plain Rust, and turns any panic into `ForkSafe::Error` instead
//! of magnus's default `fatal`, which would end the VM.

#![deny(clippy::undocumented_unsafe_blocks)]

use std::os::fd::RawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use magnus::value::{Lazy, ReprValue};
use magnus::{
    function, prelude::*, Error, ExceptionClass, RArray, RHash, RModule, Ruby, Symbol, Value,
};
use nix::errno::Errno;

use forksafe_core::addr::SockAddr;
use forksafe_core::classify::{self, Listeners, Socket};
use forksafe_core::fds;
use forksafe_core::ledger::ledger;
use forksafe_core::listeners::Given;
use forksafe_core::neutralize::{shutdown_both, DeadEnd};
use forksafe_core::pass::{self, PassOptions, PassReport};
use forksafe_core::plan::{self, Plan};
use forksafe_core::role::{self, Role};
use forksafe_core::{atfork, in_flight};

/// Defined in Ruby (lib/unicorn/forksafe/native.rb) before this library
/// loads; looked up once.
static FORKSAFE_ERROR: Lazy<ExceptionClass> = Lazy::new(|ruby| {
    ruby.class_object()
        .const_get::<_, RModule>("ForkSafe")
        .and_then(|m| m.const_get("Error"))
        .expect("ForkSafe::Error is defined before the native core loads")
});

#[magnus::init]
fn init(ruby: &Ruby) -> Result<(), Error> {
    let forksafe = ruby.define_module("ForkSafe")?;
    // A NameError here, not a panic, if Ruby did not define it first.
    forksafe.const_get::<_, ExceptionClass>("Error")?;
    ruby.get_inner(&FORKSAFE_ERROR);
    let native = forksafe.define_module("Native")?;
    atfork::install().map_err(|e| {
        Error::new(
            ruby.get_inner(&FORKSAFE_ERROR),
            format!("cannot register the fork handlers: {}", e.desc()),
        )
    })?;
    native.define_module_function("open_fds", function!(open_fds, 0))?;
    native.define_module_function("sockets", function!(sockets, 1))?;
    native.define_module_function("neutralize", function!(neutralize, 1))?;
    native.define_module_function("shutdown", function!(shutdown, 1))?;
    native.define_module_function("child_pass", function!(child_pass, 3))?;
    native.define_module_function("arm_pass", function!(arm_pass, 2))?;
    native.define_module_function("arm_server_own", function!(arm_server_own, 0))?;
    native.define_module_function("arm_app_fork", function!(arm_app_fork, 0))?;
    native.define_module_function("arm_no_pass", function!(arm_no_pass, 0))?;
    native.define_module_function("disarm", function!(disarm, 0))?;
    native.define_module_function("pass_unplanned", function!(pass_unplanned, 1))?;
    native.define_module_function("pass_unplanned?", function!(passes_unplanned, 0))?;
    native.define_module_function("role", function!(current_role, 0))?;
    native.define_module_function("rise_to", function!(rise_to, 2))?;
    native.define_module_function("request_begin", function!(request_begin, 1))?;
    native.define_module_function("request_end", function!(request_end, 1))?;
    native.define_module_function("pass_has_trouble?", function!(pass_has_trouble, 0))?;
    native.define_module_function("last_pass", function!(last_pass, 0))?;
    native.define_module_function("stats", function!(stats, 0))?;
    Ok(())
}

/// ForkSafe::Native.open_fds -> [Integer]
fn open_fds() -> Result<Vec<RawFd>, Error> {
    guard(|| Ok(fds::open_fds()))
}

/// ForkSafe::Native.sockets(in_flight) -> [{fd:, kind:, local:, remote:, cloexec:}]:
/// `in_flight` and the sockets of this process's requests in flight count
/// as clients.
fn sockets(ruby: &Ruby, mut in_flight: Vec<RawFd>) -> Result<RArray, Error> {
    guard(|| {
        let me = std::process::id() as libc::pid_t;
        in_flight.extend(in_flight::of(me));
        let table = ruby.ary_new();
        for socket in classify::sockets(&in_flight, Listeners::Open) {
            table.push(socket_hash(ruby, &socket)?)?;
        }
        Ok(table)
    })
}

/// ForkSafe::Native.neutralize(fd) -> true
fn neutralize(ruby: &Ruby, fd: RawFd) -> Result<bool, Error> {
    guard(|| {
        classify::socket_type(fd).map_err(|e| errno_error(ruby, "use", "fd", fd, e))?;
        DeadEnd::new()
            .and_then(|dead| dead.install_over(fd))
            .map_err(|e| errno_error(ruby, "neutralize", "fd", fd, e))?;
        Ok(true)
    })
}

/// ForkSafe::Native.shutdown(fd) -> true
fn shutdown(ruby: &Ruby, fd: RawFd) -> Result<bool, Error> {
    guard(|| {
        shutdown_both(fd).map_err(|e| errno_error(ruby, "shutdown", "fd", fd, e))?;
        Ok(true)
    })
}

/// ForkSafe::Native.child_pass(keep, release_listeners, in_flight) -> report
/// {clients:, listeners:, kept:, dead_end:, failed:, seconds:}: the pass,
/// here and now (for tests: a child makes its own inside fork).
fn child_pass(
    ruby: &Ruby,
    keep: Vec<RawFd>,
    release_listeners: bool,
    in_flight: Vec<RawFd>,
) -> Result<RHash, Error> {
    guard(|| {
        let mut requests = Vec::new();
        for fd in in_flight {
            let request = in_flight::Request::on(fd, 0)
                .map_err(|e| errno_error(ruby, "register", "socket", fd, e))?;
            requests.extend(request);
        }
        requests.sort_by_key(|r| r.socket.fd);
        let started = Instant::now();
        let report = pass::child_pass(&PassOptions {
            keep: &keep,
            release_listeners,
            in_flight: &requests,
            listeners: Listeners::Open,
            ..PassOptions::default()
        });
        report_hash(ruby, &report, started.elapsed())
    })
}

/// ForkSafe::Native.arm_pass(keep, release_listeners): the plan of the
/// child's pass for the forks this thread makes until `disarm`. Plain data,
/// checked by the caller: the pass runs inside fork, where nothing can
/// raise (see forksafe_core::atfork).
fn arm_pass(keep: Vec<RawFd>, release_listeners: bool) -> Result<bool, Error> {
    guard(|| {
        plan::arm(Plan::Pass {
            keep,
            release_listeners,
        });
        Ok(true)
    })
}

/// ForkSafe::Native.arm_server_own: the forks this thread makes until
/// `disarm` are the server's own (see forksafe_core::plan).
fn arm_server_own() -> Result<bool, Error> {
    guard(|| {
        plan::arm(Plan::ServerOwn);
        Ok(true)
    })
}

/// ForkSafe::Native.arm_app_fork: the forks this thread makes until
/// `disarm` are the app's.
fn arm_app_fork() -> Result<bool, Error> {
    guard(|| {
        plan::arm(Plan::AppFork);
        Ok(true)
    })
}

/// ForkSafe::Native.arm_no_pass: no pass for the forks this thread makes
/// until `disarm`, nor for their own forks (Process.daemon, spawn).
fn arm_no_pass() -> Result<bool, Error> {
    guard(|| {
        plan::arm(Plan::NoPass);
        Ok(true)
    })
}

fn disarm() -> Result<bool, Error> {
    guard(|| {
        plan::disarm();
        Ok(true)
    })
}

/// ForkSafe::Native.pass_unplanned(on): whether a fork nobody armed a plan
/// for (from C, say) is the app's: the fork hook is on.
fn pass_unplanned(on: bool) -> Result<bool, Error> {
    guard(|| {
        plan::pass_unplanned(on);
        Ok(on)
    })
}

/// ForkSafe::Native.pass_unplanned?: what `pass_unplanned` set last
/// (ForkSafe.config.fork_hook asks it).
fn passes_unplanned() -> Result<bool, Error> {
    guard(|| Ok(plan::passes_unplanned()))
}

/// ForkSafe::Native.role -> :unknown, :master or :serving: this process's.
fn current_role(ruby: &Ruby) -> Result<Symbol, Error> {
    guard(|| Ok(ruby.to_symbol(role::current().name())))
}

/// ForkSafe::Native.rise_to(:master or :serving, listeners) -> the role
/// now: this process is a server's (roles only rise), and `listeners` (fds,
/// or nil for every listener open now) are the server's.
fn rise_to(ruby: &Ruby, to: Symbol, listeners: Option<Vec<RawFd>>) -> Result<Symbol, Error> {
    let to = match to.name()?.as_ref() {
        "master" => Role::Master,
        "serving" => Role::Serving,
        other => {
            return Err(arg_error(
                ruby,
                format!("role: must be :master or :serving, got :{other}"),
            ))
        }
    };
    guard(|| {
        let given = listeners.as_deref().map_or(Given::AllOpen, Given::Fds);
        Ok(ruby.to_symbol(role::rise_to(to, given).name()))
    })
}

/// ForkSafe::Native.request_begin(fd or nil) -> ticket: a request in
/// flight, on that socket if it has one. The process serves from now on.
fn request_begin(ruby: &Ruby, fd: Option<RawFd>) -> Result<in_flight::Ticket, Error> {
    guard(|| {
        let ticket = in_flight::begin(fd)
            .map_err(|e| errno_error(ruby, "register", "socket", fd.unwrap_or(-1), e))?;
        if role::current() != Role::Serving {
            role::rise_to(Role::Serving, Given::AllOpen);
        }
        Ok(ticket)
    })
}

fn request_end(ticket: in_flight::Ticket) -> Result<bool, Error> {
    guard(|| {
        in_flight::end(ticket);
        Ok(true)
    })
}

/// ForkSafe::Native.pass_has_trouble?: this process's own pass did not go
/// as planned (worth a warning).
fn pass_has_trouble() -> Result<bool, Error> {
    guard(|| {
        Ok(ledger()
            .own_pass()
            .is_some_and(|own| own.report.has_trouble()))
    })
}

/// ForkSafe::Native.last_pass -> report or nil: this process's own pass.
fn last_pass(ruby: &Ruby) -> Result<Option<RHash>, Error> {
    guard(|| {
        ledger()
            .own_pass()
            .map(|own| report_hash(ruby, &own.report, own.took))
            .transpose()
    })
}

/// ForkSafe::Native.stats -> {forks:, clients_neutralized:, listeners_released:}
fn stats(ruby: &Ruby) -> Result<RHash, Error> {
    guard(|| {
        let ledger = ledger();
        let (clients, listeners) = ledger.own_pass().map_or((0, 0), |own| {
            (own.report.clients.len(), own.report.listeners.len())
        });
        let hash = ruby.hash_new();
        hash.aset(ruby.to_symbol("forks"), ledger.forks())?;
        hash.aset(ruby.to_symbol("clients_neutralized"), clients)?;
        hash.aset(ruby.to_symbol("listeners_released"), listeners)?;
        Ok(hash)
    })
}

fn guard<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let msg = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let ruby = Ruby::get().expect("called from a Ruby thread");
        Err(Error::new(
            ruby.get_inner(&FORKSAFE_ERROR),
            format!("internal error in the native core: {msg}"),
        ))
    })
}

fn arg_error(ruby: &Ruby, msg: String) -> Error {
    Error::new(ruby.exception_arg_error(), msg)
}

/// A caller's mistake (not open, not a socket) is an ArgumentError naming
/// the argument; anything else the system refused is ForkSafe::Error.
fn errno_error(ruby: &Ruby, op: &str, name: &str, fd: RawFd, e: Errno) -> Error {
    match e {
        Errno::EBADF => arg_error(ruby, format!("{name}: {fd} is not an open file descriptor")),
        Errno::ENOTSOCK => arg_error(ruby, format!("{name}: {fd} is not a socket")),
        e => Error::new(
            ruby.get_inner(&FORKSAFE_ERROR),
            format!("cannot {op} {name} {fd}: {} ({e:?})", e.desc()),
        ),
    }
}

fn socket_hash(ruby: &Ruby, socket: &Socket) -> Result<RHash, Error> {
    let hash = ruby.hash_new();
    hash.aset(ruby.to_symbol("fd"), socket.fd)?;
    hash.aset(ruby.to_symbol("kind"), ruby.to_symbol(socket.kind.name()))?;
    hash.aset(ruby.to_symbol("local"), addr_value(ruby, &socket.local))?;
    hash.aset(ruby.to_symbol("remote"), addr_value(ruby, &socket.remote))?;
    hash.aset(ruby.to_symbol("cloexec"), fds::cloexec(socket.fd).ok())?;
    Ok(hash)
}

fn addr_value(ruby: &Ruby, addr: &SockAddr) -> Value {
    match addr {
        SockAddr::Unnamed => ruby.qnil().as_value(),
        addr => ruby.str_new(&addr.to_string()).as_value(),
    }
}

fn report_hash(ruby: &Ruby, report: &PassReport, took: Duration) -> Result<RHash, Error> {
    let hash = ruby.hash_new();
    hash.aset(ruby.to_symbol("clients"), report.clients.clone())?;
    hash.aset(ruby.to_symbol("listeners"), report.listeners.clone())?;
    hash.aset(ruby.to_symbol("kept"), report.kept.clone())?;
    hash.aset(
        ruby.to_symbol("dead_end"),
        report.dead_end.map(|kind| ruby.to_symbol(kind.name())),
    )?;
    let failed = ruby.hash_new();
    for (fd, e) in &report.failed {
        failed.aset(*fd, format!("{e:?}: {}", e.desc()))?;
    }
    hash.aset(ruby.to_symbol("failed"), failed)?;
    hash.aset(ruby.to_symbol("seconds"), took.as_secs_f64())?;
    Ok(hash)
}
