# frozen_string_literal: true

module Support
  # Forks children that the test can wait on, and kills whatever is left
  # after each example, so no test leaves a process behind.
  module Processes
    # Forks a child running the block; the child never runs at_exit hooks.
    def child(&block)
      pid = Process.fork do
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
    def in_child(&block)
      reader, writer = IO.pipe
      pid = child do
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
