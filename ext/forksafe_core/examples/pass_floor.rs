//! The child's whole pass as the gem makes it (with what the parent keeps
//! for its children: see `kit`), per open fd, against the floor of one
//! fstat per fd (on a list of fds known in advance), both timed in freshly
//! forked children of this process, in alternating rounds.
//!
//!   cargo run --release --example pass_floor [-- FD_COUNTS ROUNDS]

use std::fs::File;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{OwnedFd, RawFd};
use std::time::Instant;

use forksafe_core::fds::open_fds;
use forksafe_core::kit;
use forksafe_core::pass::{child_pass, PassOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let counts: Vec<usize> = args
        .first()
        .map_or("64,256,4096", String::as_str)
        .split(',')
        .map(|n| n.parse().expect("FD_COUNTS: numbers separated by commas"))
        .collect();
    let rounds: usize = args
        .get(1)
        .map_or(31, |n| n.parse().expect("ROUNDS: a number"));
    raise_fd_limit(counts.iter().max().copied().unwrap_or(0) + 64);

    println!("| open fds | pass | pass per fd | fstat floor per fd | pass / floor |");
    println!("|---:|---:|---:|---:|---:|");
    // What the gem does when it loads: the children use what it keeps.
    kit::prepare();
    let mut held = Held::default();
    let parent = std::process::id() as libc::pid_t;
    for count in counts {
        held.open_until(count);
        let fds = open_fds();
        let (mut pass, mut floor) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            pass.push(in_child(|| {
                child_pass(&PassOptions {
                    release_listeners: true,
                    fd_table_size: kit::fd_table_size_of(parent),
                    dead_end: kit::inherited_dead_end(),
                    ..PassOptions::default()
                });
            }));
            floor.push(in_child(|| fstat_each(&fds)));
        }
        let (pass, floor) = (median(pass), median(floor));
        let n = fds.len() as f64;
        println!(
            "| {} | {:.0} us | {:.3} us | {:.3} us | {:.2} |",
            fds.len(),
            pass,
            pass / n,
            floor / n,
            pass / floor
        );
    }
}

/// Listener, accepted and outbound connections, pipes and files, in turn.
#[derive(Default)]
struct Held {
    listener: Option<TcpListener>,
    fds: Vec<OwnedFd>,
}

impl Held {
    fn open_until(&mut self, count: usize) {
        let listener = self
            .listener
            .get_or_insert_with(|| TcpListener::bind("127.0.0.1:0").expect("listen"));
        let addr = listener.local_addr().expect("local address");
        while open_fds().len() < count {
            let outbound = TcpStream::connect(addr).expect("connect");
            let (accepted, _) = listener.accept().expect("accept");
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

/// Microseconds `work` takes in a freshly forked child.
fn in_child(work: impl FnOnce()) -> f64 {
    let (reader, writer) = nix::unistd::pipe().expect("pipe");
    // SAFETY: the child only runs `work`, writes to a pipe and _exits.
    let child = unsafe { libc::fork() };
    assert!(child >= 0, "fork failed");
    if child == 0 {
        let started = Instant::now();
        work();
        let micros = started.elapsed().as_secs_f64() * 1e6;
        let _ = File::from(writer).write_all(&micros.to_ne_bytes());
        // SAFETY: ends the child without running the parent's destructors.
        unsafe { libc::_exit(0) }
    }
    drop(writer);
    let mut bytes = [0u8; 8];
    let read = std::io::Read::read_exact(&mut File::from(reader), &mut bytes);
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
