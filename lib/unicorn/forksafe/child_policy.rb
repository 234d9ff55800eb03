# frozen_string_literal: true

require_relative "native"
require_relative "descriptors"
require_relative "marks"

module ForkSafe
  # The child's half: what a forked child drops, decided in the parent.
  #
  # The pass itself runs inside fork(2), in the native core's fork handler,
  # before fork returns to any code of the child (another library's
  # Process._fork hook, a C extension, the app). No Ruby can run there, so
  # the plan is armed here, as plain data, just before a fork, and disarmed
  # after: the pass asked for (ForkSafe.fork), the server's own fork, or the
  # app's. What each does follows from the process's role, which the native
  # core holds (see ForkSafe.role): where no server is known, only the pass
  # asked for is made. A fork nobody armed for (fork(2) from C) is the
  # app's. This module is the only caller of those entry points.
  module ChildPolicy
    class << self
      # See ForkSafe.request. The socket is registered natively as the file
      # it is, for the pass of any fork while the request is in flight; the
      # process serves from then on.
      def request(socket, &)
        ticket = Native.request_begin(socket && Descriptors.socket(socket, "socket"))
        yield
      ensure
        Native.request_end(ticket) if ticket
      end

      # See ForkSafe.connection_opened: registered as a request's socket is.
      def connection_opened(socket)
        Native.request_begin(Descriptors.socket(socket, "socket"))
      end

      def connection_closed(ticket)
        Native.request_end(ticket)
      end

      def server_fork(&)
        Marks.current.server_fork(&)
      end

      # See ForkSafe.master and ForkSafe.serving.
      def rise_to(role, logger, listeners)
        ForkSafe.config.offer_server_logger(logger)
        Native.rise_to(role, listeners && Descriptors.list(listeners, "listeners"))
      end

      def role
        Native.role
      end

      # ForkSafe.fork's options for the forks made in the block. They hold
      # the pid that set them: the block goes on in the child, but the
      # child's own forks are not that call's.
      def with_fork_options(options)
        previous = Thread.current[:forksafe_fork]
        Thread.current[:forksafe_fork] = [Process.pid, options]
        yield
      ensure
        Thread.current[:forksafe_fork] = previous
      end

      # Around a fork (the block): its child's plan, from this thread's
      # options and marks. Returns what the block returns.
      def planned_fork
        arm
        pid = yield
        log_own_pass unless pid&.positive?
        pid
      ensure
        Native.disarm
      end

      # Around forks whose child must keep every socket: the caller going on
      # (Process.daemon), or a program exec'd at once with what it is handed
      # (spawn, system): Ruby's descriptors are close-on-exec anyway.
      def without_pass
        Native.arm_no_pass
        yield
      ensure
        Native.disarm
      end

      # In a child: a warning if its pass did not go as planned, and the
      # pass in debug mode. Each fork path reaches this once in its child.
      def log_own_pass
        debug = ForkSafe.config.debug
        return unless debug || Native.pass_has_trouble?

        log_report(Native.last_pass, debug)
      rescue StandardError => e
        last_words("forksafe: process #{Process.pid}, after fork: #{e.class}: #{e.message}")
      end

      private

      # The logger failed (closed, broken): the child goes on, and says so
      # on stderr if it can.
      def last_words(line)
        $stderr.write("#{line}\n")
      rescue StandardError
        nil
      end

      def arm
        pid, options = Thread.current[:forksafe_fork]
        return Native.arm_pass(options[:keep], options[:release_listeners]) if pid == Process.pid
        return Native.arm_server_own if Marks.current.server_fork?

        Native.arm_app_fork
      end

      def log_report(report, debug)
        return unless report

        warn_failures(report)
        log_debug(report) if debug
      end

      def warn_failures(report)
        logger = ForkSafe.config.logger
        if %i[devnull vacated].include?(report[:dead_end])
          logger.warn("forksafe: child #{Process.pid} had no descriptor for a dead socket: " \
                      "its neutralized sockets point at /dev/null (#{report[:dead_end]})")
        end
        return if report[:failed].empty?

        logger.warn("forksafe: child #{Process.pid} could not neutralize #{report[:failed].inspect}")
      end

      def log_debug(report)
        ForkSafe.config.logger.info(
          format("forksafe: child %<pid>d of %<ppid>d: neutralized clients %<clients>p, " \
                 "released listeners %<listeners>p, kept %<kept>p in %<us>.0fus",
                 pid: Process.pid, ppid: Process.ppid, us: report[:seconds] * 1e6,
                 **report.slice(:clients, :listeners, :kept))
        )
      end
    end
  end
end
