# frozen_string_literal: true

require "socket"

module ForkSafe
  # Turns what a caller gives for a socket (an IO, an object whose to_io is
  # one, or an Integer fd) into an fd, once, before anything crosses into
  # the native core, with a message naming the argument that was wrong.
  module Descriptors
    FD_MAX = (2**31) - 1

    class << self
      def fd(value, name)
        return number(value, name) if value.is_a?(Integer)

        io = value.respond_to?(:to_io) ? value.to_io : value
        unless io.respond_to?(:fileno)
          raise TypeError, "#{name}: expected an Integer file descriptor or an IO, got #{value.class}"
        end

        number(fileno(io, name), name)
      end

      # keep: one socket or fd, or an Array of them. (Not Kernel#Array: an IO
      # is Enumerable, and to_a would read the client's bytes until EOF.)
      def list(values, name)
        values = values.nil? ? [] : [values] unless values.is_a?(Array)
        values.map { |value| fd(value, "#{name} element") }
      end

      # A socket of a request: an IO must be a socket; an fd is checked by
      # the native core (it must be open).
      def socket(value, name)
        io = value.respond_to?(:to_io) ? value.to_io : value
        return io.fileno if io.is_a?(BasicSocket) && !io.closed? # every request: the short way
        raise ArgumentError, "#{name}: #{io.inspect} is not a socket" if io.is_a?(IO) && !io.is_a?(BasicSocket)

        fd(value, name)
      end

      private

      def fileno(io, name)
        raise ArgumentError, "#{name}: #{io.inspect} is closed" if io.respond_to?(:closed?) && io.closed?

        fileno = io.fileno
        raise ArgumentError, "#{name}: #{io.inspect} has no file descriptor" unless fileno.is_a?(Integer)

        fileno
      end

      def number(value, name)
        return value if value.between?(0, FD_MAX)

        raise ArgumentError, "#{name}: #{value} is not a valid file descriptor (0..#{FD_MAX})"
      end
    end
  end
end
