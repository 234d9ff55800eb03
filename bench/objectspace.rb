# frozen_string_literal: true

# The child's job done the ObjectSpace way, as hand-written fork-safety
# helpers do it (walk every IO object, close the accepted connections),
# against the gem's pass as a child makes it (ForkSafe.forked, clients only
# as here), on a heap of about a million objects. Both are timed in freshly
# forked children, in alternating rounds.
#
#   ruby -Ilib bench/objectspace.rb [OBJECTS] [CONNECTIONS] [ROUNDS]
require "socket"
require "unicorn/forksafe/fork"

objects = Integer(ARGV[0] || 1_000_000)
connections = Integer(ARGV[1] || 16)
rounds = Integer(ARGV[2] || 11)

listener = TCPServer.new("127.0.0.1", 0)
port = listener.addr[1]
held = Array.new(connections) { [TCPSocket.new("127.0.0.1", port), listener.accept] }
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

# Microseconds the block takes in a freshly forked child. `parent` runs in
# the parent after the fork.
def in_child(parent: ->(_pid) {})
  reader, writer = IO.pipe
  pid = Process.fork do
    started = monotonic
    yield
    writer.write([(monotonic - started) * 1e6].pack("E"))
    exit!(0)
  end
  parent.call(pid)
  writer.close
  reader.read.unpack1("E").tap { Process.wait(pid) }
end

def median(values) = values.sort[values.size / 2]

ForkSafe.config.fork_hook = false # no hook here: only what each block does
clients_only = ForkSafe::ChildPlan.new([], false, [])
# The parent's side of the fork hook: the same path, so it is warm in a child.
hook_in_parent = ->(pid) { ForkSafe.forked(pid, clients_only) }
walk = []
pass = []
rounds.times do
  walk << in_child { objectspace_way(port) }
  pass << in_child(parent: hook_in_parent) { ForkSafe.forked(0, clients_only) }
end
puts "| live objects | open fds | ObjectSpace walk | the gem's pass | walk / pass |"
puts "|---:|---:|---:|---:|---:|"
puts format("| %<objects>d | %<fds>d | %<walk>.0f us | %<pass>.0f us | %<ratio>.0f |",
            objects: ObjectSpace.count_objects[:TOTAL] - ObjectSpace.count_objects[:FREE],
            fds: ForkSafe::Native.open_fds.size, walk: median(walk), pass: median(pass),
            ratio: median(walk) / median(pass))
held.flatten.each(&:close)
