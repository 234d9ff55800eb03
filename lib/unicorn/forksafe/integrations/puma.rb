# frozen_string_literal: true

require_relative "../core"
require_relative "../integrations"
require_relative "response_callbacks"

module ForkSafe
  module Integrations # rubocop:disable Style/Documentation (see integrations.rb)
    # Puma 5.x to 8.x, single and cluster mode. Every way puma ends a
    # connection (response without keep-alive, error, timeout, shutdown)
    # goes through Puma::Client#close, which closes without shutdown.
    module Puma
      # Puma's events (5.x) or log writer (6.x on) as a logger.
      ServerLog = Struct.new(:writer) do
        def info(message) = writer.log(message)
        def warn(message) = writer.log(message)
      end

      def self.version
        "puma #{::Puma::Const::PUMA_VERSION}"
      end

      # Prepended to Puma::Server: the app's response callables get the
      # socket as a ClientSocket.
      module ResponseSockets
        WITHOUT_IT = "a socket the app closes in a response hijack or a streaming body is not shut down"

        def initialize(app, *rest)
          super(ResponseCallbacks.new(app), *rest)
        end
      end

      # Prepended to Puma::Server: a single-mode puma or a cluster worker
      # serves requests from here on.
      module Serving
        WITHOUT_IT = "forks from threads other than a request's keep the listeners"

        def run(*, **)
          Integrations.serving(listeners: @binder.ios) { ServerLog.new(@log_writer || @events) }
          super
        end
      end

      # Prepended to Puma::Server: each request is marked (its client is
      # registered from its accept: see Connection).
      module Requests
        WITHOUT_IT = "requests are not marked"

        def process_client(*)
          ForkSafe.request { super }
        end
      end

      # Prepended to Puma::Client, from its accept to its close: a graceful
      # stop closes the listeners while connections wait in the reactor or
      # the queue, and a child must drop them too, though no listener
      # explains them then.
      module Connection
        WITHOUT_IT = "connections waiting in the reactor at a graceful stop are not the server's"

        def initialize(io, *)
          super
          @forksafe_ticket = ForkSafe.connection_opened(io)
        end
      end

      # Prepended to Puma::Client.
      module Close
        WITHOUT_IT = "puma's close of a client is not a shutdown"

        def close
          ForkSafe.closing(io) { super }
        ensure
          ForkSafe.connection_closed(@forksafe_ticket) if @forksafe_ticket
        end
      end

      # Full hijack: the app owns the socket and closes it itself. Puma 7
      # renamed Client#call, which env["rack.hijack"] is a method of.
      module FullHijack
        WITHOUT_IT = "a fully hijacked socket is not shut down when the app closes it"

        def full_hijack
          ClientSocket.into(super)
        end
      end

      # Puma 5 and 6.
      module FullHijackCall
        def call
          ClientSocket.into(super)
        end
      end

      # Prepended to Puma::Cluster: the master, from its start (the gem
      # loaded before puma) or its spawn of workers (loaded with a preloaded
      # app). A plugin's fork after boot (Solid Queue's supervisor) is app
      # code then, and lets the port go.
      module Master
        WITHOUT_IT = "forks in puma's cluster master (a plugin's) keep the listeners"

        def run(*)
          Integrations.master(listeners: @launcher.binder.ios) { ServerLog.new(@log_writer || @events) }
          super
        end

        def spawn_workers(*)
          Integrations.master(listeners: @launcher.binder.ios) { ServerLog.new(@log_writer || @events) }
          super
        end
      end

      # Prepended to Puma::Binder: where puma binds its listeners (a
      # cluster master before its before_fork hooks, a single-mode puma
      # before it serves), they are the server's.
      module Binds
        WITHOUT_IT = "forks in puma's master before its workers (before_fork) keep the listeners"

        def parse(*)
          super.tap { Integrations.master(listeners: ios) { ServerLog.new(@log_writer || @events) } }
        end
      end

      # Prepended to Puma::Cluster and Puma::Cluster::Worker (worker 0's
      # forks under fork_worker): puma's own calls of fork, and nothing
      # around them (before_worker_fork hooks run just before), are the
      # server's: workers keep the listeners.
      module OwnForks
        WITHOUT_IT = "puma's own forks of workers are not marked"

        private

        def fork(...)
          ForkSafe.server_fork { super }
        end
      end
    end

    [Puma::ResponseSockets, Puma::Serving, Puma::Requests].each { |hook| install("Puma::Server", hook, server: Puma) }
    install("Puma::Client", Puma::Connection, server: Puma)
    install("Puma::Client", Puma::Close, server: Puma)
    install("Puma::Client", Puma::FullHijack, Puma::FullHijackCall, server: Puma)
    install("Puma::Cluster", Puma::Master, server: Puma)
    install("Puma::Binder", Puma::Binds, server: Puma)
    install("Puma::Cluster", Puma::OwnForks, server: Puma)
    install("Puma::Cluster::Worker", Puma::OwnForks, server: Puma)
  end
end
