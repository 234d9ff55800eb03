//! The child's pass as a serving process's fork makes it, inside fork(2)
//! (the handlers installed, the role taken, the listener remembered, the
//! accepted connections in flight, as a server's are), against
//! the floor of one fstat per fd. Both are timed in the child, and as the
//! fork round trip (fork, the child's work, _exit, waitpid) against a
//! plain fork: one process, alternating rounds, medians.
//!
//!   cargo run --release --example pass_floor [-- FD_COUNTS ROUNDS FORKS_PER_ROUND]

#![deny(clippy::undocumented_unsafe_blocks)]

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use forksafe_core::fds::open_fds;
use forksafe_core::ledger::ledger;
use forksafe_core::listeners::Given;
use forksafe_core::role::{self, Role};
use forksafe_core::{atfork, in_flight, plan};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |at: usize, default: &str| args.get(at).map_or(default, String::as_str).to_owned();
    let counts: Vec<usize> = arg(0, "64,256,4096")
        .split(',')
        .map(|n| n.parse().expect("FD_COUNTS: numbers separated by commas"))
        .collect();
    let rounds: usize = arg(1, "11").parse().expect("ROUNDS: a number");
    let forks: usize = arg(2, "20").parse().expect("FORKS_PER_ROUND: a number");
    raise_fd_limit(counts.iter().max().copied().unwrap_or(0) + 64);

    atfork::install().expect("pthread_atfork");
    let mut held = Held::new();
    role::rise_to(Role::Serving, Given::Fds(&[held.listener.as_raw_fd()]));

    println!(
        "| open fds | plain fork | fork + pass | fork + floor | pass / plain | floor / plain \
         | pass in the child | floor in the child | pass / floor |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for count in counts {
        held.open_until(count);
        let fds = open_fds();
        let mut times = [(); 5].map(|_| Vec::new());
        for round in 0..=rounds {
            let round_trips = [
                per_fork(forks, false, || {}),
                per_fork(forks, true, || {}),
                per_fork(forks, false, || fstat_each(&fds)),
            ];
            let in_child = [in_child(true, || {}), in_child(false, || fstat_each(&fds))];
            if round > 0 {
                // The first round warms up.
                for (times, took) in times
                    .iter_mut()
                    .zip(round_trips.into_iter().chain(in_child))
                {
                    times.push(took);
                }
            }
        }
        let [plain, pass, floor, pass_alone, floor_alone] = times.map(median);
        println!(
            "| {} | {plain:.0} us | {pass:.0} us | {floor:.0} us | {:.3} | {:.3} | {pass_alone:.0} us \
             | {floor_alone:.0} us | {:.2} |",
            fds.len(),
            pass / plain,
            floor / plain,
            pass_alone / floor_alone
        );
    }
}

/// Listener, accepted and outbound connections, pipes and files, in turn;
/// each accepted connection a request's in flight, as puma's clients are.
struct Held {
    listener: TcpListener,
    fds: Vec<OwnedFd>,
}

impl Held {
    fn new() -> Self {
        Self {
            listener: TcpListener::bind("127.0.0.1:0").expect("listen"),
            fds: Vec::new(),
        }
    }

    fn open_until(&mut self, count: usize) {
        let addr = self.listener.local_addr().expect("local address");
        while open_fds().len() < count {
            let outbound = TcpStream::connect(addr).expect("connect");
            let (accepted, _) = self.listener.accept().expect("accept");
            in_flight::begin(Some(accepted.as_raw_fd())).expect("register");
            let (reader, writer) = nix::unistd::pipe().expect("pipe");
            let file = File::open("/dev/null").expect("/dev/null");
            self.fds.extend([
                outbound.into(),
                accepted.into(),
                reader,
                writer,
                file.into(),
            ]);
        }
    }
}

fn fstat_each(fds: &[RawFd]) {
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    for &fd in fds {
        // SAFETY: the kernel writes one struct stat into `stat`.
        std::hint::black_box(unsafe { libc::fstat(fd, stat.as_mut_ptr()) });
    }
}

/// A fork whose child passes (an app's fork in a serving process) or not
/// (a fork nobody planned, with the hook off).
fn fork(pass: bool) -> libc::pid_t {
    plan::pass_unplanned(pass);
    // SAFETY: the caller's child only runs plain code and _exits.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    child
}

/// Microseconds per round trip of `forks` forks whose child runs `work`.
fn per_fork(forks: usize, pass: bool, work: impl Fn()) -> f64 {
    let started = Instant::now();
    for _ in 0..forks {
        let child = fork(pass);
        if child == 0 {
            work();
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(0) }
        }
        // SAFETY: waits for our own child; no status is needed.
        unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
    }
    started.elapsed().as_secs_f64() * 1e6 / forks as f64
}

/// Microseconds the child's pass (as its ledger has it) or `work` takes.
fn in_child(pass: bool, work: impl FnOnce()) -> f64 {
    let (reader, writer) = nix::unistd::pipe().expect("pipe");
    let child = fork(pass);
    if child == 0 {
        let started = Instant::now();
        work();
        let took = match ledger().own_pass() {
            Some(own) if pass => own.took.as_secs_f64(),
            _ => started.elapsed().as_secs_f64(),
        };
        let _ = File::from(writer).write_all(&(took * 1e6).to_ne_bytes());
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) }
    }
    drop(writer);
    let mut bytes = [0u8; 8];
    let read = File::from(reader).read_exact(&mut bytes);
    // SAFETY: waits for our own child; no status is needed.
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
    read.expect("the child's timing");
    f64::from_ne_bytes(bytes)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn raise_fd_limit(wanted: usize) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if (soft as usize) < wanted {
        setrlimit(Resource::RLIMIT_NOFILE, hard.min(wanted as u64), hard).expect("setrlimit");
    }
}
