# frozen_string_literal: true

# Fork round trip (fork, child exit!, wait) with N open fds of mixed kinds,
# in a process that serves (ForkSafe.serving, as a puma or unicorn worker
# is): the plain fork (the hook off) against Kernel#fork through the hook
# (an app's fork: clients and listeners dropped) and ForkSafe.fork. Rounds
# alternate in one process, so the machine's noise hits all three alike;
# the figure is the median round. Each fd count is measured with a small
# heap, then with the heap grown to about HEAP_MB of resident memory (a
# fork copies the page tables: the bigger the process, the more the fork
# itself costs). The goal column is the project's bound on hooked / plain.
# The plain fork runs the gem's fork handlers too, which find no plan and
# take and release their locks: the ratio leaves that fixed cost out.
#
#   ruby -Ilib bench/fork_roundtrip.rb [FD_COUNTS] [ROUNDS] [FORKS_PER_ROUND] [HEAP_MB]
#
# With FORKSAFE_BENCH_ONLY=plain|hooked|explicit it makes that kind of fork
# alone, ROUNDS x FORKS_PER_ROUND times, and prints nothing: for strace -c
# and perf stat.
require "socket"
require "unicorn/forksafe"

fd_counts = (ARGV[0] || "64,4096").split(",").map { |n| Integer(n) }
rounds = Integer(ARGV[1] || 11)
forks = Integer(ARGV[2] || 40)
heap_mb = Integer(ARGV[3] || 200)

soft, hard = Process.getrlimit(:NOFILE)
Process.setrlimit(:NOFILE, [hard, fd_counts.max + 256].max, hard) if soft < fd_counts.max + 256

# Listener, accepted and outbound connections, pipes and files, in turn:
# the accepted connections are the server's clients, registered from
# accept to close as puma's are (ForkSafe.connection_opened).
def open_mixed(target, ios, tickets, listener)
  while ForkSafe::Native.open_fds.size < target
    ios << TCPSocket.new("127.0.0.1", listener.addr[1]) << listener.accept
    tickets << ForkSafe.connection_opened(ios.last)
    ios.concat(IO.pipe) << File.open(File::NULL)
  end
end

def close_all(ios, tickets)
  tickets.each { |ticket| ForkSafe.connection_closed(ticket) }.clear
  ios.each(&:close).clear
end

def per_fork(forks)
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  forks.times { Process.wait(yield) }
  (Process.clock_gettime(Process::CLOCK_MONOTONIC) - started) / forks * 1e6
end

def median(values) = values.sort[values.size / 2]

# Each kind with whether the hook is on for it.
KINDS = {
  "plain fork" => [false, -> { Process.fork { exit!(0) } }],
  "hooked fork" => [true, -> { Process.fork { exit!(0) } }],
  "ForkSafe.fork" => [true, -> { ForkSafe.fork { exit!(0) } }]
}.freeze
# The goals on hooked / plain: [small heap, big heap] by fd count.
GOALS = { 64 => [1.10, 1.02], 4096 => [2.0, 1.25] }.freeze

def resident_mb = File.read("/proc/self/statm").split[1].to_i * 4096 / 1_048_576

# Strings of 100 bytes, each its own object and malloc'd buffer.
def grow_heap(ballast, megabytes)
  ballast.concat(Array.new(100_000) { "x" * 100 }) while resident_mb < megabytes
end

def row(requested, fds, times, big_heap)
  plain, hooked, explicit = times.values.map { |t| median(t) }
  goal = GOALS.dig(requested, big_heap ? 1 : 0)
  format("| %<heap>d MB | %<fds>d | %<plain>.0f us | %<hooked>.0f us | %<explicit>.0f us | " \
         "%<hooked_ratio>.3f | %<goal>s | %<explicit_ratio>.3f |",
         heap: resident_mb, fds:, plain:, hooked:, explicit:, hooked_ratio: hooked / plain,
         goal: goal ? "<= #{goal}" : "", explicit_ratio: explicit / plain)
end

def time_kinds(rounds, forks)
  times = KINDS.keys.to_h { |k| [k, []] }
  (rounds + 1).times do |round|
    KINDS.each do |name, (hook, forker)|
      took = with_hook(hook) { per_fork(forks, &forker) }
      times[name] << took unless round.zero? # the first round warms up
    end
  end
  times
end

def with_hook(hook)
  ForkSafe.config.fork_hook = hook
  yield
ensure
  ForkSafe.config.fork_hook = true
end

listener = TCPServer.new("127.0.0.1", 0)
ForkSafe.serving(nil, listeners: [listener])
ios = []
tickets = []
ballast = []
if (only = ENV.fetch("FORKSAFE_BENCH_ONLY", nil))
  hook, forker = KINDS.fetch(KINDS.keys.find { |k| k.start_with?(only) } || abort("FORKSAFE_BENCH_ONLY=#{only}?"))
  grow_heap(ballast, heap_mb)
  open_mixed(fd_counts.max, ios, tickets, listener)
  ForkSafe.config.fork_hook = hook
  (rounds * forks).times { Process.wait(forker.call) }
  exit
end

puts "| resident | open fds | #{KINDS.keys.join(" | ")} | hooked / plain | goal | ForkSafe.fork / plain |"
puts "|---:|---:|#{"---:|" * (KINDS.size + 3)}"
[0, heap_mb].each do |megabytes|
  grow_heap(ballast, megabytes)
  GC.start
  close_all(ios, tickets)
  fd_counts.each do |count|
    open_mixed(count, ios, tickets, listener)
    times = time_kinds(rounds, forks)
    puts row(count, ForkSafe::Native.open_fds.size, times, megabytes.positive?)
  end
end
