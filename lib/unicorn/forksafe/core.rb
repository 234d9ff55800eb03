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

    # Marks the current thread as serving a request while the block runs:
    # forks from it are app code, and release listeners. `socket` is the
    # request's connection, neutralized in any child even when no listener
    # explains it.
    def request(socket = nil, &)
      raise ArgumentError, "request: a block is required (the request it marks)" unless block_given?

      ChildPolicy.request(socket, &)
    end

    # Called by an integration where its server starts serving requests in
    # this process (a unicorn or puma worker, single-mode puma), with the
    # server's logger. From then on every fork here that is not the
    # server's own is app code, from whatever thread or fiber: a job
    # runner's thread holds no request mark, yet its orphan would hold the
    # port as surely.
    def serving(logger)
      ChildPolicy.serving(logger)
    end

    def serving?
      ChildPolicy.serving?
    end

    # Marks forks made in the block as the server's own (master spawning a
    # worker): the child keeps the listeners.
    def server_fork(&)
      raise ArgumentError, "server_fork: a block is required (the forks it marks)" unless block_given?

      ChildPolicy.server_fork(&)
    end
  end
end
