# frozen_string_literal: true

# The child's job done the ObjectSpace way, as hand-written fork-safety
# helpers do it (walk every IO object, close the accepted connections),
# against the gem's fork hook doing it (clients only, as here), on a heap of
# about a million objects. Each is measured as what it adds to a fork round
# trip (fork, the child's job, exit!, wait) over a bare one, in alternating
# rounds, so both pay what a fresh child pays for its first steps.
#
#   ruby -Ilib bench/objectspace.rb [OBJECTS] [CONNECTIONS] [ROUNDS]
require "socket"
require "unicorn/forksafe"

objects = Integer(ARGV[0] || 1_000_000)
connections = Integer(ARGV[1] || 16)
rounds = Integer(ARGV[2] || 11)

listener = TCPServer.new("127.0.0.1", 0)
PORT = listener.addr[1]
ForkSafe.serving(nil, listeners: [listener]) # as a worker: every other fork drops its clients
held = Array.new(connections) { [TCPSocket.new("127.0.0.1", PORT), listener.accept] }
ballast = Array.new(objects) { Object.new } # rubocop:disable Lint/UselessAssignment (kept alive on purpose)

# What the helpers do: every live IO, the connected TCP sockets whose local
# port is the listener's, closed.
def objectspace_way(port)
  ObjectSpace.each_object(IO) do |io|
    next if io.closed? || !io.is_a?(TCPSocket)

    io.close if io.local_address.ip_port == port
  end
end

def monotonic = Process.clock_gettime(Process::CLOCK_MONOTONIC)

# Microseconds per fork round trip, the hook on or off.
def round_trip(forks, hook:, &child)
  ForkSafe.config.fork_hook = hook
  started = monotonic
  forks.times do
    Process.wait(Process.fork do
      child.call
      exit!(0)
    end)
  end
  (monotonic - started) / forks * 1e6
end

def median(values) = values.sort[values.size / 2]

KINDS = {
  bare: [false, -> {}],
  walk: [false, -> { objectspace_way(PORT) }],
  pass: [true, -> {}]
}.freeze

times = KINDS.keys.to_h { |kind| [kind, []] }
KINDS.each_value { |hook, child| round_trip(5, hook:, &child) } # warm up
rounds.times do
  KINDS.each { |kind, (hook, child)| times[kind] << round_trip(20, hook:, &child) }
end
bare, walk, pass = times.values.map { |t| median(t) }
puts "| live objects | open fds | ObjectSpace walk | the gem's pass | walk / pass |"
puts "|---:|---:|---:|---:|---:|"
puts format("| %<objects>d | %<fds>d | %<walk>.0f us | %<pass>.0f us | %<ratio>.0f |",
            objects: ObjectSpace.count_objects[:TOTAL] - ObjectSpace.count_objects[:FREE],
            fds: ForkSafe::Native.open_fds.size, walk: walk - bare, pass: pass - bare,
            ratio: (walk - bare) / (pass - bare))
held.flatten.each(&:close)
