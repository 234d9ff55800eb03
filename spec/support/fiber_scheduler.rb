# frozen_string_literal: true

module Support
  # The least fiber scheduler that lets one fiber run while another waits
  # for a process, an IO or a sleep, as an app server's (Falcon's, say)
  # does: each wait is a thread that wakes the fiber when it is over, and
  # the scheduler's loop resumes fibers as they wake. Threads stand in for
  # an event loop; only the interleaving of fibers matters to the specs.
  class FiberScheduler
    def initialize
      @woken = Thread::Queue.new
      @waiting = 0
    end

    def fiber(&)
      Fiber.new(blocking: false, &).tap(&:resume)
    end

    def process_wait(pid, flags)
      waiting_on { Process::Status.wait(pid, flags) }
    end

    def io_wait(io, events, timeout)
      waiting_on do
        readable, writable = IO.select(([io] if events.anybits?(IO::READABLE)),
                                       ([io] if events.anybits?(IO::WRITABLE)), nil, timeout)
        (readable&.any? ? IO::READABLE : 0) | (writable&.any? ? IO::WRITABLE : 0)
      end
    end

    def kernel_sleep(duration = nil)
      waiting_on { sleep(duration) }
    end

    def block(_blocker, timeout = nil)
      kernel_sleep(timeout || 0.01)
    end

    def unblock(_blocker, _fiber) = nil

    # Runs the fibers until none waits: Ruby calls it when the scheduler is
    # unset, or the thread ends.
    def close
      while @waiting.positive?
        fiber, value = @woken.pop
        @waiting -= 1
        fiber.resume(value)
      end
    end

    private

    def waiting_on(&wait)
      fiber = Fiber.current
      @waiting += 1
      Thread.new { @woken << [fiber, wait.call] }
      Fiber.yield
    end
  end
end
