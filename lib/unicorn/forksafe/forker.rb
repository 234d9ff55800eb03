# frozen_string_literal: true

require_relative "child_policy"
require_relative "server_half"

module ForkSafe
  # ForkSafe.fork: the explicit form, safe with or without the fork hook.
  module Forker
    LISTENER_POLICIES = %i[release keep].freeze

    class << self
      # See ForkSafe.fork.
      def fork(keep: [], listeners: :release, detach: false, &block)
        options = fork_options(keep, listeners, detach)
        ServerHalf.handing_off(keep, options[:keep]) do
          ChildPolicy.with_fork_options(options) { detach ? detached_fork(options, &block) : safe_fork(&block) }
        end
      end

      private

      def fork_options(keep, listeners, detach)
        unless LISTENER_POLICIES.include?(listeners)
          raise ArgumentError, "listeners: must be :release or :keep, got #{listeners.inspect}"
        end
        unless [true, false].include?(detach)
          raise ArgumentError, "detach: must be true or false, got #{detach.inspect}"
        end

        { keep: Descriptors.list(keep, "keep"), release_listeners: listeners == :release }
      end

      # With the hook on, it arms this thread's options for Process.fork;
      # without it, they are armed here.
      def safe_fork(&block)
        return Process.fork(&block) if ForkSafe.config.fork_hook
        return ChildPolicy.planned_fork { Process.fork } unless block

        ChildPolicy.planned_fork do
          Process.fork do
            ChildPolicy.log_own_pass
            block.call
          end
        end
      end

      # The middle process forks the real child with the same options,
      # reports its pid and exits at once, so we reap it now and the real
      # child is reparented: no zombie, no waiter thread. The reply is read
      # once the middle has exited, not until EOF: a process forked meanwhile
      # by another thread may hold a copy of the write end for as long as it
      # lives.
      def detached_fork(options, &)
        reader, writer = IO.pipe
        middle = safe_fork
        return ChildPolicy.with_fork_options(options) { report_grandchild(reader, writer, &) } unless middle

        reap(middle)
        grandchild_pid(reader.read_nonblock(64, exception: false))
      ensure
        [reader, writer].each { |io| io.close unless io.closed? }
      end

      # With SIGCHLD ignored, the kernel reaps the middle itself: wait returns
      # ECHILD once it has exited.
      def reap(pid)
        Process.wait(pid)
      rescue Errno::ECHILD
        nil
      end

      # In the middle process. Returns only in a blockless grandchild.
      def report_grandchild(reader, writer, &block)
        reader.close
        pid = safe_fork(&grandchild(writer, block))
        return nil unless pid

        writer.write(pid.to_s)
        exit!(0)
      rescue SystemCallError => e
        writer.write("errno:#{e.errno}")
        exit!(1)
      end

      # The pipe is no business of the block's.
      def grandchild(writer, block)
        block && proc do
          writer.close
          block.call
        end
      end

      def grandchild_pid(reply)
        reply = "" unless reply.is_a?(String) # :wait_readable, or nil at EOF: nothing written
        raise SystemCallError.new("fork", Integer(reply.delete_prefix("errno:"))) if reply.start_with?("errno:")

        Integer(reply, exception: false) || raise(Error, "detached fork failed: the middle process reported nothing")
      end
    end
  end
end
