# frozen_string_literal: true

require_relative "version"
require_relative "native"
require_relative "configuration"
require_relative "child_policy"
require_relative "server_half"
require_relative "forker"

# Makes fork inside a running web server safe for the server's clients.
#
# The facade: each half keeps its own state, the child's in ChildPolicy,
# the server's in ServerHalf; Forker is ForkSafe.fork. The kernel work is
# the native core's. Requiring this file alone installs no fork hook: only
# ForkSafe.fork is made safe.
module ForkSafe
  @config = Configuration.new

  class << self
    attr_reader :config

    def configure
      yield config
    end

    # Same contract as Process.fork. keep: sockets the child may use (they
    # stay open in it, and the server closes them without shutdown);
    # listeners: :release (default: app code must not hold the port) or
    # :keep; detach: true leaves no zombie (double fork; the pid returned
    # is the process running the block).
    # (A named block: Ruby 3.1 rejects an anonymous one after keywords.)
    def fork(keep: [], listeners: :release, detach: false, &block)
      Forker.fork(keep:, listeners:, detach:, &block)
    end

    # Wraps a server's close of a client connection (the block) with a
    # shutdown, unless the socket was handed off with keep: (a plain close).
    # writes_first: the block still writes (an error response) before it
    # closes. io may be a TLS socket whose to_io is the raw one.
    def closing(io, writes_first: false, &close)
      ServerHalf.closing(io, writes_first:, &close)
    end

    # True for a socket handed to a child with keep:, until the server
    # closes it.
    def handed_off?(io)
      ServerHalf.handed_off?(io)
    end

    # Counters of this process: forks it made, and what its own pass
    # neutralized (a child's pass runs in the child, so it counts there).
    def stats
      Native.stats
    end

    # The report of this process's own pass, if it is a forked child:
    # {clients:, listeners:, kept:, dead_end:, failed:, seconds:}.
    def last_pass
      Native.last_pass
    end

    # The process's sockets as the kernel classifies them.
    def sockets
      Native.sockets(NO_FDS)
    end

    # What this process is to a web server the gem knows: :unknown (no
    # server seen: its forks make no pass but ForkSafe.fork's, exactly as
    # without the gem), :master (a server bound or inherited its listeners
    # here) or :serving (it serves requests). In a master or a serving
    # process every fork but the server's own is app code: its child drops
    # the clients and the listeners. Roles only rise; a child starts
    # :unknown, but the server's own forks, which start :master.
    def role
      ChildPolicy.role
    end

    # Marks a request while the block runs, and the process as serving.
    # `socket` is the request's connection, neutralized in any child even
    # when no listener explains it.
    def request(socket = nil, &)
      raise ArgumentError, "request: a block is required (the request it marks)" unless block_given?

      ChildPolicy.request(socket, &)
    end

    # Called by an integration for a connection its server holds outside
    # any request, from its accept to its close (puma's reactor and
    # keep-alive waits, an EventMachine connection): a child drops it even
    # once the listeners are closed (a graceful stop). Returns a ticket for
    # connection_closed. The process serves from then on.
    def connection_opened(socket)
      ChildPolicy.connection_opened(socket)
    end

    def connection_closed(ticket)
      ChildPolicy.connection_closed(ticket)
    end

    # Called by an integration where its server binds or inherits its
    # listeners in this process (a master, a mold), with the server's
    # logger: the role is at least :master from then on. `listeners`: the
    # server's listening sockets (IOs or fds), whose addresses are
    # remembered as the server's; without them, every listener open then is
    # taken for one. A fork here drops the server's listeners, and the
    # connections accepted on them, only: others are the app's business.
    def master(logger, listeners: nil)
      ChildPolicy.rise_to(:master, logger, listeners)
    end

    # Called by an integration where its server starts serving requests in
    # this process (a unicorn or puma worker, single-mode puma), with the
    # server's logger: the role is :serving from then on, for good, and the
    # addresses of its listeners are remembered (a connection on one stays
    # a client in a child after a graceful stop has closed them). Every
    # fork here that is not the server's own is app code, from whatever
    # thread or fiber: a job runner's thread serves no request, yet its
    # orphan would hold the port as surely. A serving process that forks
    # workers marks those forks with server_fork, as a master does.
    def serving(logger, listeners: nil)
      ChildPolicy.rise_to(:serving, logger, listeners)
    end

    def serving?
      role == :serving
    end

    # Marks forks made in the block as the server's own (a master spawning
    # a worker): the child drops the clients, keeps the listeners, and is a
    # master. Mark the fork alone, not hooks of the app's around it.
    def server_fork(&)
      raise ArgumentError, "server_fork: a block is required (the forks it marks)" unless block_given?

      ChildPolicy.server_fork(&)
    end
  end
end
