# frozen_string_literal: true

module ForkSafe
  # One thread's marks in one process: how many ForkSafe.server_fork blocks
  # are open on it.
  #
  # They are the thread's, not the fiber's (Thread#[] is fiber-local): a
  # server may make its fork from another fiber of the thread that marked
  # it. They hold the pid that made them: the forking thread goes on in the
  # child inside the block that marked it, but a worker spawned there
  # spawns nothing of the server's yet. In the child the parent's marks
  # count for nothing, and the first use starts afresh.
  Marks = Struct.new(:pid, :server_forks) do
    def self.current
      thread = Thread.current
      marks = thread.thread_variable_get(:forksafe_marks)
      pid = Process.pid
      return marks if marks&.pid == pid

      thread.thread_variable_set(:forksafe_marks, new(pid, 0))
    end

    def server_fork
      self.server_forks += 1
      yield
    ensure
      self.server_forks -= 1
    end

    def server_fork?
      server_forks.positive?
    end
  end
end
