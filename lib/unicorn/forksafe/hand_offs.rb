# frozen_string_literal: true

require "set"

module ForkSafe
  # The sockets handed to a child with keep: until the server closes them
  # (closed without shutdown, so the child's connection survives).
  # Thread-safe.
  #
  # A forked child inherits the parent's entries, which name the parent's
  # sockets: the table is stamped with the pid it belongs to, and a
  # child's first use starts it afresh. Nothing runs in the child to clear
  # it (there, every page written is a page copied). Ruby releases the lock
  # if a thread gone with the fork was holding it.
  class HandOffs
    def initialize
      @lock = Mutex.new
      start_afresh
    end

    # Returns the fds that were not handed off already.
    def hand_off(fds)
      return NO_FDS if fds.empty? # ForkSafe.fork without keep:, without the lock

      synchronize { fds.select { |fd| @handed_off.add?(fd) } }
    end

    def handed_off?(fd)
      return false if @handed_off.empty? # the common case, without the lock

      synchronize { @handed_off.include?(fd) }
    end

    # The server has closed its copy: the fd number is free for the next
    # connection, which is shut down as usual.
    def end_hand_off(fd)
      synchronize { @handed_off.delete(fd) }
    end

    private

    def synchronize
      @lock.synchronize do
        start_afresh unless @pid == Process.pid
        yield
      end
    end

    def start_afresh
      @pid = Process.pid
      @handed_off = Set.new
    end
  end
end
