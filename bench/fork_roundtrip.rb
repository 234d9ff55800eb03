# frozen_string_literal: true

# Fork round trip (fork, child exit!, wait) with N open fds of mixed kinds:
# bare Process.fork (hook off) vs ForkSafe.fork vs Kernel#fork through the
# hook. Rounds alternate in one process, so the machine's noise hits all
# three alike; the figure is the median round.
#
#   ruby -Ilib bench/fork_roundtrip.rb [FD_COUNTS] [ROUNDS] [FORKS_PER_ROUND]
require "socket"
require "unicorn/forksafe"

fd_counts = (ARGV[0] || "64,4096").split(",").map { |n| Integer(n) }
rounds = Integer(ARGV[1] || 15)
forks = Integer(ARGV[2] || 40)

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

ios = []
puts "| open fds | #{KINDS.keys.join(" | ")} | ForkSafe / bare | hooked / bare |"
puts "|---:|#{"---:|" * (KINDS.size + 2)}"
fd_counts.each do |count|
  open_mixed(count, ios)
  times = KINDS.keys.to_h { |k| [k, []] }
  rounds.times do
    KINDS.each do |name, forker|
      ForkSafe.config.fork_hook = name.end_with?("(hooked)")
      times[name] << per_fork(forks, &forker)
    end
  end
  ForkSafe.config.fork_hook = true
  bare, safe, hooked = times.values.map { |t| median(t) }
  puts format("| %<fds>d | %<bare>.0f us | %<safe>.0f us | %<hooked>.0f us | %<safe_ratio>.3f | %<hooked_ratio>.3f |",
              fds: ForkSafe::Native.open_fds.size, bare:, safe:, hooked:,
              safe_ratio: safe / bare, hooked_ratio: hooked / bare)
end
