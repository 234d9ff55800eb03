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

      # The connection's fd, from the reactor's descriptor table (read under
      # the GVL, which the reactor holds while it changes that table). nil
      # once the reactor has dropped the connection (a timeout before a
      # deferred request ran): the request is still marked.
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

      # Prepended to Thin::Connection: pre_process calls the app, in the
      # reactor's thread or, threaded, in one of EventMachine's defer
      # threads. The connection has no Ruby IO: it is marked by its fd.
      module Requests
        WITHOUT_IT = "requests are not marked"

        def pre_process
          Integrations.serving { Thin.logger } # the gem loaded after Thin started
          ForkSafe.request(Thin.fd(self)) { super }
        end
      end
    end

    install("Thin::Backends::Base", Thin::Serving, server: Thin)
    install("Thin::Connection", Thin::Requests, server: Thin)
  end
end
