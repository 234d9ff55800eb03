# frozen_string_literal: true

require_relative "../client_socket"
require_relative "../integrations"

module ForkSafe
  module Integrations # rubocop:disable Style/Documentation (see integrations.rb)
    # Puma 5.x and 6.x, single and cluster mode. Every way puma ends a
    # connection (response without keep-alive, error, timeout, shutdown)
    # goes through Puma::Client#close, which closes without shutdown.
    module Puma
      # Puma's events (5.x) or log writer (6.x) as a logger.
      ServerLog = Struct.new(:writer) do
        def info(message) = writer.log(message)
        def warn(message) = writer.log(message)
      end

      # A response hijack ("rack.hijack" in the headers): puma writes the
      # headers, hands the connection to the app's proc and never closes it;
      # the proc does. This wraps the app so that the proc gets the socket
      # extended with ClientSocket first, and its close is a shutdown too.
      class ResponseHijack
        def initialize(app)
          @app = app
        end

        def call(env)
          status, headers, body = @app.call(env)
          hijack = headers["rack.hijack"] if headers.is_a?(Hash)
          return [status, headers, body] unless hijack

          [status, headers.merge("rack.hijack" => ->(io) { hijack.call(ClientSocket.into(io)) }), body]
        end
      end

      # Prepended to Puma::Server.
      module Server
        def initialize(app, *rest)
          super(ResponseHijack.new(app), *rest)
        end

        def process_client(*)
          ForkSafe.config.server_logger ||= ServerLog.new(@log_writer || @events)
          ForkSafe.request { super }
        end
      end

      # Prepended to Puma::Client.
      module Client
        def close
          ForkSafe.closing(io) { super }
        end

        # Full hijack: the app owns the socket and closes it itself.
        def call
          ClientSocket.into(super)
        end
      end

      # Cluster workers (from the master, or from worker 0 with
      # fork_worker) keep the listeners.
      module SpawnsWorkers
        def spawn_worker(*)
          ForkSafe.server_fork { super }
        end
      end
    end

    when_defined("Puma::Server") { |server| server.prepend(Puma::Server) }
    when_defined("Puma::Client") { |client| client.prepend(Puma::Client) }
    when_defined("Puma::Cluster") { |cluster| cluster.prepend(Puma::SpawnsWorkers) }
    when_defined("Puma::Cluster::Worker") { |worker| worker.prepend(Puma::SpawnsWorkers) }
  end
end
