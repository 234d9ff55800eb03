# frozen_string_literal: true

require "set"

module ForkSafe
  # The sockets a process knows more about than the kernel can tell: those
  # in flight in a request (clients even if no listener explains them), and
  # those handed to a child with keep: (closed without shutdown, so the
  # child's connection survives). Thread-safe; a child forgets the parent's.
  class Registry
    NONE = [].freeze

    def initialize
      @lock = Mutex.new
      @in_flight = Hash.new(0) # fd => requests that registered it
      @handed_off = Set.new
    end

    def register(fd)
      @lock.synchronize { @in_flight[fd] += 1 }
    end

    def unregister(fd)
      @lock.synchronize do
        @in_flight[fd] -= 1
        @in_flight.delete(fd) unless @in_flight[fd].positive?
      end
    end

    def in_flight
      return NONE if @in_flight.empty? # the common case, without the lock

      @lock.synchronize { @in_flight.keys }
    end

    # In a forked child, before anything else runs there: the parent's
    # sockets are none of this process's business. (Ruby releases a lock
    # that a thread gone with the fork was holding.)
    def forget
      @in_flight.clear unless @in_flight.empty?
      @handed_off.clear unless @handed_off.empty?
    end

    # Returns the fds that were not handed off already.
    def hand_off(fds)
      @lock.synchronize { fds.select { |fd| @handed_off.add?(fd) } }
    end

    def handed_off?(fd)
      return false if @handed_off.empty? # the common case, without the lock

      @lock.synchronize { @handed_off.include?(fd) }
    end

    # The server has closed its copy: the fd number is free for the next
    # connection, which is shut down as usual.
    def end_hand_off(fd)
      @lock.synchronize { @handed_off.delete(fd) }
    end
  end
end
