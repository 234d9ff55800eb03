# frozen_string_literal: true

require_relative "../core"
require_relative "../integrations"

module ForkSafe
  module Integrations # rubocop:disable Style/Documentation (see integrations.rb)
    # Thin 1.x: one process, EventMachine's reactor (C++) owning the
    # listener and every connection. EventMachine calls shutdown(SHUT_WR)
    # before each close (response, error, timeout, stop), so the client
    # gets its EOF whoever else holds the socket: no close hook. What a
    # fork's child still has is the rest: the listener (an orphan keeps the
    # port) and every connection open, its own and its neighbours', to read
    # and write.
    module Thin
      def self.version
        "thin #{::Thin::VERSION::STRING}"
      end

      def self.logger
        ::Thin::Logging.logger # nil when Thin runs silent
      end

      # The connection's fd (it has no Ruby IO), from the reactor's
      # descriptor table (read under the GVL, which the reactor holds while
      # it changes that table). nil once the reactor has dropped the
      # connection.
      def self.fd(connection)
        EventMachine.get_file_descriptor(connection.signature)
      rescue RuntimeError
        nil
      end

      # Prepended to Thin::Backends::Base. start runs the reactor, binds the
      # listener in it (connect), then yields: from there the process serves,
      # and its listener's address is remembered, so a connection stays a
      # client after a graceful stop closed the listener.
      module Serving
        WITHOUT_IT = "forks before the first request make no pass: an orphan keeps the listener"

        def start(&started)
          super do
            Integrations.serving { Thin.logger }
            started&.call
          end
        end
      end

      # Prepended to Thin::Connection, from the reactor's accept (post_init)
      # to the connection's end (unbind): a graceful stop closes the
      # listener while connections are still open, a slow client's among
      # them, and a child must drop them too, though no listener explains
      # them then.
      module Connection
        WITHOUT_IT = "connections open at a graceful stop are not the server's"

        def post_init
          super
          fd = Thin.fd(self)
          @forksafe_ticket = ForkSafe.connection_opened(fd) if fd
        end

        def unbind
          super
        ensure
          ForkSafe.connection_closed(@forksafe_ticket) if @forksafe_ticket
        end
      end

      # Prepended to Thin::Connection: pre_process calls the app, in the
      # reactor's thread or, threaded, in one of EventMachine's defer
      # threads.
      module Requests
        WITHOUT_IT = "requests are not marked"

        def pre_process
          Integrations.serving { Thin.logger } unless ForkSafe.serving? # the gem loaded after Thin started
          ForkSafe.request { super } # its connection is registered: see Connection
        end
      end
    end

    install("Thin::Backends::Base", Thin::Serving, server: Thin)
    install("Thin::Connection", Thin::Connection, server: Thin)
    install("Thin::Connection", Thin::Requests, server: Thin)
  end
end
