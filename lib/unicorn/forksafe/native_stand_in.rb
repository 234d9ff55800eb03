# frozen_string_literal: true

require "socket"

module ForkSafe
  # ForkSafe::Native where the child's pass cannot run (NativeLoader is the
  # only place that chooses it): the native core's module functions, in
  # Ruby, with fork protection off.
  #
  # What the server's half asks of the core still works: shutdown ends a
  # connection for every process holding it, through BasicSocket#shutdown.
  # Roles rise, in this process (a child starts knowing none), and
  # arguments are checked as natively. But no child drops anything: every
  # fork is a plain fork, no plan is kept, nothing is counted, and the
  # socket table is empty. The pass's own work on the kernel (open_fds,
  # neutralize, child_pass) raises NotImplementedError, as Ruby's own
  # methods do where a platform lacks them.
  #
  # It says so once, as a warning through ForkSafe.config.logger, when the
  # process first takes a server's role or asks for a pass (ForkSafe.fork),
  # not when it loads: by then the server's logger (or the app's) is
  # known, and a process that never serves (a console, a rake task) is not
  # told of protection it never needed. A child inherits having said it: a
  # server says it once, not once per worker.
  module Native
    ROLES = %i[unknown master serving].freeze
    RAW_FD = -(2**31)..((2**31) - 1)
    TICKET = 0..((2**64) - 1)

    @role = [Process.pid, :unknown]
    @tickets = 0
    @said = false

    class << self
      def open_fds = off(:open_fds)
      def neutralize(_fd) = off(:neutralize)
      def child_pass(_keep, _release_listeners, _in_flight) = off(:child_pass)

      # No socket is classified: none would be acted on.
      def sockets(in_flight)
        fds(in_flight)
        []
      end

      # shutdown(SHUT_RDWR) on the socket open on fd, which stays its IO's:
      # a socket whose peer is gone counts as done, as natively.
      def shutdown(fd)
        socket = BasicSocket.for_fd(raw_fd(fd))
        socket.autoclose = false
        socket.shutdown(Socket::SHUT_RDWR)
        true
      rescue Errno::ENOTCONN
        true
      rescue Errno::EBADF, Errno::ENOTSOCK
        raise ArgumentError, open?(fd) ? "fd: #{fd} is not a socket" : "fd: #{fd} is not an open file descriptor"
      rescue SystemCallError => e
        raise Error, "cannot shutdown fd #{fd}: #{e.message}"
      end

      def arm_pass(keep, _release_listeners)
        fds(keep)
        say_off
        true
      end

      def arm_server_own = true
      def arm_app_fork = true
      def arm_no_pass = true
      def disarm = true

      # Held, as the core holds it (see Configuration#fork_hook); no fork
      # here makes a pass.
      def pass_unplanned(pass)
        @pass_unplanned = pass
      end

      def pass_unplanned? = @pass_unplanned || false

      def role
        pid, role = @role
        pid == Process.pid ? role : :unknown
      end

      # Roles only rise; returns the role now.
      def rise_to(to, listeners)
        raise TypeError, "no implicit conversion of #{to.class} into Symbol" unless to.is_a?(Symbol)
        raise ArgumentError, "role: must be :master or :serving, got :#{to}" unless %i[master serving].include?(to)

        fds(listeners) if listeners
        say_off
        @role = [Process.pid, to] if ROLES.index(to) > ROLES.index(role)
        role
      end

      # A request in flight, or a connection held: the process serves.
      def request_begin(fd)
        raise ArgumentError, "socket: #{fd} is not an open file descriptor" if fd && !open?(raw_fd(fd))

        rise_to(:serving, nil) unless role == :serving
        @tickets += 1
      end

      def request_end(ticket)
        raise TypeError, "no implicit conversion of #{ticket.class} into Integer" unless ticket.is_a?(Integer)
        raise RangeError, "ticket: #{ticket} out of range" unless TICKET.cover?(ticket)

        true
      end

      def pass_has_trouble? = false
      def last_pass = nil
      def stats = { forks: 0, clients_neutralized: 0, listeners_released: 0 }

      private

      def say_off
        return if @said

        @said = true
        ForkSafe.config.logger.warn(
          "forksafe: fork protection is off on this platform: #{NativeLoader.off_reason}. " \
          "A forked child keeps the server's client connections and listeners; shutdown before close " \
          "still ends each connection the server closes, and ForkSafe.fork is a plain fork."
        )
      rescue StandardError => e
        warn "forksafe: fork protection is off (#{NativeLoader.off_reason}); " \
             "the logger failed: #{e.class}: #{e.message}"
      end

      def off(name)
        raise NotImplementedError, "ForkSafe::Native.#{name}: fork protection is off (#{NativeLoader.off_reason})"
      end

      def fds(values)
        raise TypeError, "no implicit conversion of #{values.class} into Array" unless values.is_a?(Array)

        values.each { |value| raw_fd(value) }
      end

      def raw_fd(value)
        raise TypeError, "no implicit conversion of #{value.class} into Integer" unless value.is_a?(Integer)
        raise RangeError, "#{value} out of range of a file descriptor" unless RAW_FD.cover?(value)

        value
      end

      def open?(fd)
        IO.for_fd(fd, autoclose: false)
        true
      rescue SystemCallError, ArgumentError
        false
      end
    end
  end
end
