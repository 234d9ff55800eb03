# frozen_string_literal: true

module ForkSafe
  # One thread's marks in one process: how many ForkSafe.request and
  # ForkSafe.server_fork blocks are open on it.
  #
  # They are the thread's, not the fiber's (Thread#[] is fiber-local): puma
  # runs a request in a fiber of its own (fiber_per_request), or wipes the
  # fiber's locals between two requests of one connection
  # (clean_thread_locals). They count the blocks open, so requests that
  # interleave as fibers of one thread leave none behind. They hold the pid
  # that made them: the forking thread goes on in the child inside the
  # blocks that marked it, but a worker spawned inside server_fork, or a
  # child of a request, serves no request of its own yet. In the child the
  # parent's marks count for nothing, and the first use starts afresh.
  Marks = Struct.new(:pid, :request, :server_fork) do
    def self.current
      thread = Thread.current
      marks = thread.thread_variable_get(:forksafe_marks)
      pid = Process.pid
      return marks if marks&.pid == pid

      thread.thread_variable_set(:forksafe_marks, new(pid, 0, 0))
    end

    def marked(key)
      self[key] += 1
      yield
    ensure
      self[key] -= 1
    end

    def marked?(key)
      self[key].positive?
    end
  end
end
