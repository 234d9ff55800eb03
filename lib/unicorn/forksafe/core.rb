# frozen_string_literal: true

require_relative "version"
require_relative "forksafe_native"
require_relative "configuration"
require_relative "registry"

# Makes fork inside a running web server safe for the server's clients.
#
# The policy lives here; the kernel work is ForkSafe::Native's. Requiring
# this file alone installs no fork hook: only ForkSafe.fork is made safe.
module ForkSafe
  # Raised when the system refuses an operation; bad arguments raise
  # ArgumentError or TypeError naming the argument.
  class Error < StandardError; end

  @config = Configuration.new
  @stats = { forks: 0, clients_neutralized: 0, listeners_released: 0 }
  @registry = Registry.new
  @lock = Mutex.new
  @pass_pid = nil
  @last_pass = nil

  class << self
    attr_reader :config

    # The report of this process's own pass, if it is a forked child:
    # {clients:, listeners:, kept:, dead_end:, failed:, seconds:}.
    attr_reader :last_pass

    def configure
      yield config
    end

    # Counters of this process: forks it made, and what its own pass
    # neutralized (a child's pass runs in the child, so it counts there).
    def stats
      @lock.synchronize { @stats.dup }
    end

    # The process's sockets as the kernel classifies them.
    def sockets
      Native.sockets(@registry.in_flight)
    end

    # Marks the current thread as serving a request while the block runs:
    # forks from it are app code, and release listeners. `socket` is the
    # request's connection, neutralized in any child even when no listener
    # explains it.
    def request(socket = nil, &)
      raise ArgumentError, "request: a block is required (the request it marks)" unless block_given?

      fd = socket && request_fd(socket)
      @registry.register(fd) if fd
      marked(:forksafe_request, &)
    ensure
      @registry.unregister(fd) if fd
    end

    # Marks forks made in the block as the server's own (master spawning a
    # worker): the child keeps the listeners.
    def server_fork(&)
      raise ArgumentError, "server_fork: a block is required (the forks it marks)" unless block_given?

      marked(:forksafe_server_fork, &)
    end

    # The child's side of a fork: one native pass, at most once per process.
    # Called by the fork hook and by ForkSafe.fork, before any app code.
    def after_fork_in_child
      return if @pass_pid == Process.pid

      @pass_pid = Process.pid
      report = Native.child_pass(child_keep, release_listeners?, @registry.in_flight)
      forget_marks
      forget_parent_state(report)
      warn_failures(report)
      log_pass(report)
    rescue StandardError => e
      config.logger.warn("forksafe: child #{Process.pid} pass failed: #{e.class}: #{e.message}")
    end

    # The parent's side: constant-time bookkeeping only.
    def after_fork_in_parent
      @lock.synchronize { @stats[:forks] += 1 }
    end

    private

    # This runs on every request: an open socket's fileno is all it takes.
    # The native conversion takes an Integer fd, and names anything else.
    def request_fd(socket)
      io = socket.to_io if socket.respond_to?(:to_io)
      return Native.fds([socket], "socket").first unless io.is_a?(IO)
      raise ArgumentError, "socket: #{io.inspect} is not a socket" unless io.is_a?(BasicSocket)
      raise ArgumentError, "socket: #{io.inspect} is closed" if io.closed?

      io.fileno
    end

    def marked(key)
      previous = Thread.current[key]
      Thread.current[key] = true
      yield
    ensure
      Thread.current[key] = previous
    end

    def child_keep
      Thread.current[:forksafe_fork]&.fetch(:keep) || []
    end

    # App code (ForkSafe.fork, or a fork while serving a request) releases
    # listeners; the server's own forks, and forks nobody marked, keep them.
    def release_listeners?
      options = Thread.current[:forksafe_fork]
      return options[:release_listeners] if options
      return false if Thread.current[:forksafe_server_fork]

      Thread.current[:forksafe_request] ? true : false
    end

    # The forking thread's marks were the parent's: a worker spawned inside
    # server_fork, or a child of a request, serves no request of its own yet.
    # (ForkSafe.fork's options stay: a detached grandchild needs them.)
    def forget_marks
      Thread.current[:forksafe_request] = nil
      Thread.current[:forksafe_server_fork] = nil
    end

    # The child starts with its own counters and none of the parent's
    # sockets. (Ruby releases the lock if a thread gone with the fork held it.)
    def forget_parent_state(report)
      @registry.forget
      @last_pass = report
      @stats = { forks: 0, clients_neutralized: report[:clients].size,
                 listeners_released: report[:listeners].size }
    end

    def warn_failures(report)
      if %i[devnull vacated].include?(report[:dead_end])
        config.logger.warn("forksafe: child #{Process.pid} had no descriptor for a dead socket: " \
                           "its neutralized sockets point at /dev/null (#{report[:dead_end]})")
      end
      return if report[:failed].empty?

      config.logger.warn("forksafe: child #{Process.pid} could not neutralize #{report[:failed].inspect}")
    end

    def log_pass(report)
      return unless config.debug

      config.logger.info(
        format("forksafe: child %<pid>d of %<ppid>d: neutralized clients %<clients>p, " \
               "released listeners %<listeners>p, kept %<kept>p in %<us>.0fus",
               pid: Process.pid, ppid: Process.ppid, us: report[:seconds] * 1e6,
               **report.slice(:clients, :listeners, :kept))
      )
    end
  end
end
