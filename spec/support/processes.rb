# frozen_string_literal: true

require "fiddle"

module Support
  # Forks children that the test can wait on, and kills whatever is left
  # after each example, so no test leaves a process behind.
  module Processes
    # Forks a child running the block; the child never runs at_exit hooks.
    # `via` is the fork to use (Process.fork, ForkSafe.fork with options).
    def child(via: Process.method(:fork), &block)
      pid = via.call do
        block.call
        exit!(0)
      rescue Exception => e # rubocop:disable Lint/RescueException
        warn "child failed: #{e.class}: #{e.message}"
        exit!(1)
      end
      children << pid
      pid
    end

    # Runs the block in a child and returns what it returned (marshaled
    # through a pipe), raising if the child failed.
    def in_child(via: Process.method(:fork), &block)
      reader, writer = IO.pipe
      pid = child(via:) do
        reader.close
        writer.write(Marshal.dump(block.call))
      end
      writer.close
      result = reader.read
      reader.close
      expect_success(pid)
      Marshal.load(result) # rubocop:disable Security/MarshalLoad
    end

    def expect_success(pid)
      _, status = Process.wait2(children.delete(pid))
      raise "child exited with #{status.inspect}" unless status.success?
    end

    # Forks a child that sleeps, and returns once its block runs: after the
    # child's pass, like an orphan found seconds later.
    def running_child(via: Process.method(:fork), seconds: 6)
      reader, writer = IO.pipe
      pid = child(via:) do
        reader.close
        writer.close
        sleep seconds
      end
      writer.close
      reader.read # EOF once the child closed its copy
      reader.close
      pid
    end

    # A `via:` that forks with fork(2) from C, as a C extension would: no
    # Process._fork, so no Ruby hook sees it. The child runs the block (which
    # ends with exit!) on the forking thread, the only one it has.
    def c_fork
      fork2 = Fiddle::Function.new(Fiddle::Handle::DEFAULT["fork"], [], Fiddle::TYPE_INT, need_gvl: true)
      lambda do |&block|
        pid = fork2.call
        raise SystemCallError.new("fork", Fiddle.last_error) if pid.negative?

        block.call if pid.zero?
        pid
      end
    end

    def children
      @children ||= []
    end

    def reap_children
      children.each { |pid| kill_and_wait(pid) }
      children.clear
    end

    def kill_and_wait(pid)
      Process.kill(:KILL, pid)
      Process.wait(pid)
    rescue Errno::ESRCH, Errno::ECHILD
      nil
    end
  end
end
