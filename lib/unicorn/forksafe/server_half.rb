# frozen_string_literal: true

require "socket"
require_relative "native"
require_relative "hand_offs"

# The parent's half: a server's close of a client connection ends it for
# every process holding it. close(2) drops one reference to the socket; the
# peer sees EOF only when the last one goes, so a forked child would keep
# the client waiting. shutdown(2) acts on the connection itself.
module ForkSafe
  # Extended into one socket the server will close: a hijacked one (the
  # app closes it), or one handed off with keep: (the server's own shutdown
  # call must not end the child's connection). Never into a class: the
  # normal path of a request pays nothing.
  #
  # The shutdown is the business of the process that extended the socket,
  # the one serving that connection. A child closing its copy of a socket
  # handed to it (a listener, an outbound connection, a client it answers)
  # drops its reference only: shutdown acts on the socket every process
  # shares, and would stop the parent's listener or end its connection.
  module ClientSocket
    # Extends `io` and returns it, owned by this process (again, if a
    # parent extended it first).
    def self.into(io)
      io.extend(self)
    end

    def self.extended(io)
      io.instance_variable_set(:@forksafe_owner, Process.pid)
    end

    def shutdown(*)
      ServerHalf.handed_off?(self) ? 0 : super
    end

    def close
      return super unless @forksafe_owner == Process.pid

      ServerHalf.closing(self) { super }
    end
  end

  # Shutdown before close, and the sockets handed to a child with keep:,
  # which are closed plainly instead: see ForkSafe.closing, ForkSafe.fork.
  module ServerHalf
    @hand_offs = HandOffs.new

    class << self
      # True for a socket handed to a child with keep:, until the server closes
      # it: it must not be shut down, or the child's connection would end too.
      def handed_off?(io)
        raw = raw_io(io, "handed_off?")
        !raw.closed? && @hand_offs.handed_off?(raw.fileno)
      end

      # Wraps a server's close of a client connection (the block) with a
      # shutdown, unless the socket was handed off with keep: (a plain close).
      # writes_first: the block still writes (an error response) before it
      # closes. io may be a TLS socket whose to_io is the raw one: its close
      # writes close_notify first too.
      # (A named block: Ruby 3.1 rejects an anonymous one after keywords.)
      def closing(io, writes_first: false, &close)
        check_closing(close, writes_first)
        raw = raw_io(io, "closing")
        return yield if raw.closed?
        return closing_plainly(raw.fileno, &close) if @hand_offs.handed_off?(raw.fileno)
        return shutting_down_after(raw, &close) if writes_first || !raw.equal?(io)

        shut_down(raw)
        yield
      end

      # The server must close what it handed off without shutdown: by fd on
      # the close paths that ask (ForkSafe.closing), and by the socket itself
      # for a server that shuts down on its own (unicorn's normal path). If
      # the fork fails, no child has them: they are shut down as usual.
      def handing_off(ios, fds)
        fresh = @hand_offs.hand_off(fds)
        (ios.is_a?(Array) ? ios : [ios]).grep(BasicSocket).each { |io| ClientSocket.into(io) }
        yield
      rescue SystemCallError
        fresh.each { |fd| @hand_offs.end_hand_off(fd) }
        raise
      end

      private

      def check_closing(close, writes_first)
        raise ArgumentError, "closing: a block that closes the socket is required" unless close
        return if [true, false].include?(writes_first)

        raise ArgumentError, "writes_first: must be true or false, got #{writes_first.inspect}"
      end

      def raw_io(io, name)
        raw = io.to_io if io.respond_to?(:to_io)
        return raw if raw.is_a?(IO)

        raise TypeError, "#{name}: expected an IO, or an object whose to_io is one, got #{io.class}"
      end

      # The hand-off ends once the close is done: a close nested in the block
      # (a wrapper's close calling a ClientSocket's) is plain too.
      def closing_plainly(fd)
        yield
      ensure
        @hand_offs.end_hand_off(fd)
      end

      # The shutdown goes on a second reference taken before the block, which
      # writes, then closes the first.
      def shutting_down_after(raw)
        spare = second_reference(raw)
        yield
      ensure
        if spare
          shut_down(spare)
          spare.close
        end
      end

      # Out of descriptors (the app's failure may be just that), the socket
      # itself shuts down as it closes, after what the block wrote: the
      # server's half must never cost a response.
      def second_reference(raw)
        raw.dup
      rescue Errno::EMFILE, Errno::ENFILE
        ClientSocket.into(raw)
        nil
      end

      def shut_down(socket)
        Native.shutdown(socket.fileno) # an Integer: no conversion on the hot path
      rescue ArgumentError, Error
        nil # no longer a socket, or gone: nothing left to end
      end
    end
  end
end
