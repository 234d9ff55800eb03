# frozen_string_literal: true

# Fork round trip (fork, child exit!, wait) with N open fds of mixed kinds:
# bare Process.fork (hook off) vs ForkSafe.fork vs Kernel#fork through the
# hook. Rounds alternate in one process, so the machine's noise hits all
# three alike; the figure is the median round. Each fd count is measured
# with a small heap, then with the heap grown to about HEAP_MB of resident
# memory (a fork copies the page tables: the bigger the process, the more
# the fork itself costs).
#
#   ruby -Ilib bench/fork_roundtrip.rb [FD_COUNTS] [ROUNDS] [FORKS_PER_ROUND] [HEAP_MB]
require "socket"
require "unicorn/forksafe"

fd_counts = (ARGV[0] || "16,64,256,4096").split(",").map { |n| Integer(n) }
rounds = Integer(ARGV[1] || 11)
forks = Integer(ARGV[2] || 40)
heap_mb = Integer(ARGV[3] || 200)

soft, hard = Process.getrlimit(:NOFILE)
Process.setrlimit(:NOFILE, [hard, fd_counts.max + 256].max, hard) if soft < fd_counts.max + 256

# Listener, accepted and outbound connections, pipes and files, in turn.
def open_mixed(target, ios)
  listener = TCPServer.new("127.0.0.1", 0)
  ios << listener
  while ForkSafe::Native.open_fds.size < target
    ios << TCPSocket.new("127.0.0.1", listener.addr[1]) << listener.accept
    ios.concat(IO.pipe) << File.open(File::NULL)
  end
end

def per_fork(forks)
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  forks.times { Process.wait(yield) }
  (Process.clock_gettime(Process::CLOCK_MONOTONIC) - started) / forks * 1e6
end

def median(values) = values.sort[values.size / 2]

KINDS = {
  "Process.fork (bare)" => -> { Process.fork { exit!(0) } },
  "ForkSafe.fork" => -> { ForkSafe.fork { exit!(0) } },
  "Kernel#fork (hooked)" => -> { fork { exit!(0) } }
}.freeze

def resident_mb = File.read("/proc/self/statm").split[1].to_i * 4096 / 1_048_576

# Strings of 100 bytes, each its own object and malloc'd buffer.
def grow_heap(ballast, megabytes)
  ballast.concat(Array.new(100_000) { "x" * 100 }) while resident_mb < megabytes
end

def row(fds, times)
  bare, safe, hooked = times.values.map { |t| median(t) }
  format("| %<heap>d MB | %<fds>d | %<bare>.0f us | %<safe>.0f us | %<hooked>.0f us | %<safe_ratio>.3f | " \
         "%<hooked_ratio>.3f |", heap: resident_mb, fds:, bare:, safe:, hooked:,
                                 safe_ratio: safe / bare, hooked_ratio: hooked / bare)
end

ios = []
ballast = []
puts "| resident | open fds | #{KINDS.keys.join(" | ")} | ForkSafe / bare | hooked / bare |"
puts "|---:|---:|#{"---:|" * (KINDS.size + 2)}"
[0, heap_mb].each do |megabytes|
  grow_heap(ballast, megabytes)
  GC.start
  ios.each(&:close).clear
  fd_counts.each do |count|
    open_mixed(count, ios)
    times = KINDS.keys.to_h { |k| [k, []] }
    KINDS.each_value { |forker| per_fork(forks, &forker) } # warm up: the first round is off
    rounds.times do
      KINDS.each do |name, forker|
        ForkSafe.config.fork_hook = name.end_with?("(hooked)")
        times[name] << per_fork(forks, &forker)
      end
    end
    ForkSafe.config.fork_hook = true
    puts row(ForkSafe::Native.open_fds.size, times)
  end
end
