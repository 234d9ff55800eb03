# frozen_string_literal: true

require_relative "version"
require_relative "forksafe_native"
require_relative "configuration"
require_relative "registry"
require_relative "marks"

# Makes fork inside a running web server safe for the server's clients.
#
# The policy lives here; the kernel work is ForkSafe::Native's. Requiring
# this file alone installs no fork hook: only ForkSafe.fork is made safe.
module ForkSafe
  # Raised when the system refuses an operation; bad arguments raise
  # ArgumentError or TypeError naming the argument.
  class Error < StandardError; end

  NO_FDS = [].freeze

  @config = Configuration.new
  @registry = Registry.new

  # What a child's pass is to do, decided in the parent just before the
  # fork, from the forking thread's marks.
  ChildPlan = Struct.new(:keep, :release_listeners, :registered)

  class << self
    attr_reader :config

    def configure
      yield config
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
      Native.sockets(Marks.in_flight)
    end

    # Marks the current thread as serving a request while the block runs:
    # forks from it are app code, and release listeners. `socket` is the
    # request's connection, neutralized in any child even when no listener
    # explains it.
    def request(socket = nil, &)
      raise ArgumentError, "request: a block is required (the request it marks)" unless block_given?

      Marks.current.in_request(socket && registered_socket(socket), &)
    end

    # Called by an integration where its server starts serving requests in
    # this process (a unicorn or puma worker, single-mode puma), with the
    # server's logger. From then on every fork here that is not the
    # server's own is app code, from whatever thread or fiber: a job
    # runner's thread holds no request mark, yet its orphan would hold the
    # port as surely.
    def serving(logger)
      config.server_logger ||= logger
      @serving = Process.pid
    end

    def serving?
      @serving == Process.pid
    end

    # Marks forks made in the block as the server's own (master spawning a
    # worker): the child keeps the listeners.
    def server_fork(&)
      raise ArgumentError, "server_fork: a block is required (the forks it marks)" unless block_given?

      marked(:server_fork, &)
    end

    # In the parent, just before a fork: what the child's pass is to do.
    def child_plan
      pid, options = Thread.current[:forksafe_fork]
      options = nil unless pid == Process.pid
      keep = options ? options[:keep] : NO_FDS
      ChildPlan.new(keep, release_listeners?(options), Marks.in_flight)
    end

    # Both sides of a fork, right after it: `pid` is what fork returned. The
    # parent takes this very path on every fork, so a fresh child runs only
    # code whose caches are already filled, and writes next to nothing.
    def forked(pid, plan)
      log_pass if Native.forked(pid, plan.keep, plan.release_listeners, plan.registered, config.debug)
    rescue StandardError => e
      config.logger.warn("forksafe: process #{Process.pid}, after fork: #{e.class}: #{e.message}")
    end

    private

    # This runs on every request: the open socket itself (its to_io) is
    # what is registered. The native conversion takes an Integer fd, and
    # names anything else.
    def registered_socket(socket)
      io = socket.to_io if socket.respond_to?(:to_io)
      return Native.fds([socket], "socket").first unless io.is_a?(IO)
      raise ArgumentError, "socket: #{io.inspect} is not a socket" unless io.is_a?(BasicSocket)
      raise ArgumentError, "socket: #{io.inspect} is closed" if io.closed?

      io
    end

    # See Marks: the thread's, and its process's.
    def marked(key)
      marks = Marks.current
      marks[key] += 1
      yield
    ensure
      marks[key] -= 1
    end

    def marked?(key)
      Marks.current[key].positive?
    end

    # App code releases listeners: ForkSafe.fork, a fork in a request, and
    # any fork but the server's own where a server serves requests. Where
    # none does, a fork nobody marked keeps them: it may be the server's.
    def release_listeners?(options)
      return options[:release_listeners] if options
      return false if marked?(:server_fork)

      serving? || marked?(:request)
    end

    def log_pass
      report = last_pass
      warn_failures(report)
      log_debug(report) if config.debug
    end

    def warn_failures(report)
      if %i[devnull vacated].include?(report[:dead_end])
        config.logger.warn("forksafe: child #{Process.pid} had no descriptor for a dead socket: " \
                           "its neutralized sockets point at /dev/null (#{report[:dead_end]})")
      end
      return if report[:failed].empty?

      config.logger.warn("forksafe: child #{Process.pid} could not neutralize #{report[:failed].inspect}")
    end

    def log_debug(report)
      config.logger.info(
        format("forksafe: child %<pid>d of %<ppid>d: neutralized clients %<clients>p, " \
               "released listeners %<listeners>p, kept %<kept>p in %<us>.0fus",
               pid: Process.pid, ppid: Process.ppid, us: report[:seconds] * 1e6,
               **report.slice(:clients, :listeners, :kept))
      )
    end
  end
end
