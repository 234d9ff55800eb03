# frozen_string_literal: true

require_relative "core"

# The parent's half: a server's close of a client connection ends it for
# every process holding it. close(2) drops one reference to the socket; the
# peer sees EOF only when the last one goes, so a forked child would keep
# the client waiting. shutdown(2) acts on the connection itself.
module ForkSafe
  # For a server's accepted connections (prepended to their class, or
  # extended into one hijacked socket): close shuts the connection down
  # first, and a socket handed off with keep: is never shut down, by the
  # server's own shutdown call either.
  module ClientSocket
    def shutdown(*)
      ForkSafe.handed_off?(self) ? 0 : super
    end

    def close
      ForkSafe.closing(self) { super }
    end
  end

  class << self
    # True for a socket handed to a child with keep:, until the server closes
    # it: it must not be shut down, or the child's connection would end too.
    def handed_off?(io)
      @registry.handed_off?(io.to_io.fileno)
    end

    # Wraps a server's close of a client connection (the block) with a
    # shutdown, unless the socket was handed off with keep: (a plain close).
    # io may be a TLS socket whose to_io is the raw one.
    def closing(io, &)
      raw = io.to_io
      return yield if raw.closed? || @registry.end_hand_off(raw.fileno)
      return closing_tls(raw, &) unless raw.equal?(io)

      shut_down(raw)
      yield
    end

    private

    # A TLS close writes close_notify through the raw socket, then closes
    # it: the shutdown goes on a second reference taken before.
    def closing_tls(raw)
      spare = raw.dup
      yield
    ensure
      if spare
        shut_down(spare)
        spare.close
      end
    end

    def shut_down(socket)
      Native.shutdown(socket)
    rescue ArgumentError, Error
      nil # no longer a socket, or gone: nothing left to end
    end
  end
end
