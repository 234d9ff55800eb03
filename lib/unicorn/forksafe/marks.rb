# frozen_string_literal: true

module ForkSafe
  # One thread's marks in one process: how many ForkSafe.request and
  # ForkSafe.server_fork blocks are open on it, and the sockets of its
  # requests in flight.
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
  #
  # A request costs no lock: only a fork, which is rare, reads the other
  # threads' marks.
  Marks = Struct.new(:pid, :request, :server_fork, :sockets) do
    def self.current
      thread = Thread.current
      marks = thread.thread_variable_get(:forksafe_marks)
      pid = Process.pid
      return marks if marks&.pid == pid

      thread.thread_variable_set(:forksafe_marks, new(pid, 0, 0, []))
    end

    # The fds of every thread's requests in flight in this process. A
    # socket the app has closed is not among them: its number may name
    # another connection by now (an outbound one, opened next).
    def self.in_flight
      pid = Process.pid
      sockets = Thread.list.flat_map do |thread|
        marks = thread.thread_variable_get(:forksafe_marks)
        marks&.pid == pid ? marks.sockets.dup : NO_FDS
      end
      sockets.filter_map { |socket| socket.is_a?(IO) ? (socket.fileno unless socket.closed?) : socket }
    end

    def in_request(socket)
      self.request += 1
      sockets << socket if socket
      yield
    ensure
      self.request -= 1
      sockets.delete_at(sockets.rindex { |open| open.equal?(socket) }) if socket
    end
  end
end
