# frozen_string_literal: true

require "set"

module ForkSafe
  # The sockets a process knows more about than the kernel can tell: those
  # in flight in a request (clients even if no listener explains them), and
  # those handed to a child with keep: (closed without shutdown, so the
  # child's connection survives). Thread-safe.
  #
  # A forked child inherits the parent's entries, which name the parent's
  # sockets: the registry is stamped with the pid it belongs to, and a
  # child's first use starts it afresh. Nothing runs in the child to clear
  # it (there, every page written is a page copied). Ruby releases the lock
  # if a thread gone with the fork was holding it.
  class Registry
    def initialize
      @lock = Mutex.new
      start_afresh
    end

    def register(fd)
      synchronize { @in_flight[fd] += 1 }
    end

    def unregister(fd)
      synchronize do
        @in_flight[fd] -= 1
        @in_flight.delete(fd) unless @in_flight[fd].positive?
      end
    end

    def in_flight
      return NO_FDS if @in_flight.empty? # the common case, without the lock

      synchronize { @in_flight.keys }
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
      @in_flight = Hash.new(0)
      @handed_off = Set.new
    end
  end
end
