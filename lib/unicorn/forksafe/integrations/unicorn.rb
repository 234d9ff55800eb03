# frozen_string_literal: true

require_relative "../core"
require_relative "../integrations"

module ForkSafe
  module Integrations # rubocop:disable Style/Documentation (see integrations.rb)
    # Extended into a unicorn-family hook: prepended where the server's
    # listeners (its LISTENERS) are open already, the gem loaded with the
    # app in a process that holds them (a worker of preload_app false, the
    # new master of a USR2 upgrade, which inherited them before it loads
    # the app), the process is a server's at once: a fork the app makes as
    # it loads is app code.
    module ListenersOpen
      def prepended(server)
        super
        Integrations.master(listeners: server::LISTENERS) { nil } unless server::LISTENERS.empty?
      end
    end

    # Unicorn 4.x to 6.x. Unicorn shuts down before close on its normal
    # path; its error path (handle_error) and the app's close of a hijacked
    # socket only close, so a forked child's reference kept the client
    # waiting. Each request is marked, the master says it is one, and its
    # own forks are marked.
    module Unicorn
      def self.version
        "unicorn #{::Unicorn::Const::UNICORN_VERSION}"
      end

      # Prepended to Unicorn::HttpServer: a worker serves requests from
      # here on.
      module Serving
        WITHOUT_IT = "forks from threads other than a request's keep the listeners"

        private

        def worker_loop(*)
          Integrations.serving(listeners: self.class::LISTENERS) { @logger }
          super
        end
      end

      # Prepended to Unicorn::HttpServer. A worker that loaded the gem with
      # the app (config.ru, preload_app false) entered worker_loop before
      # the gem was there: its first request says it serves. The client is
      # registered: in a graceful stop unicorn closes its listeners before
      # the request ends, and no listener explains the client then.
      module Requests
        WITHOUT_IT = "requests are not marked"

        private

        def process_client(client, *)
          Integrations.serving(listeners: self.class::LISTENERS) { @logger } unless ForkSafe.serving?
          ForkSafe.request(client) { super }
        end
      end

      # Prepended to Unicorn::HttpServer. handle_error writes an error
      # response, then only closes. When the client is already gone it
      # writes nothing, so one shutdown first does: that case runs once per
      # request under a load tool that closes its spare connections.
      module ErrorResponses
        WITHOUT_IT = "the close after an error response is not a shutdown"
        # The errors for which unicorn writes no response.
        CLIENT_GONE = [EOFError, Errno::ECONNRESET, Errno::EPIPE, Errno::ENOTCONN].freeze

        private

        def handle_error(client, error)
          ForkSafe.closing(client, writes_first: CLIENT_GONE.none? { |gone| error.is_a?(gone) }) { super }
        end
      end

      # Prepended to Unicorn::HttpServer: the master has bound or inherited
      # its listeners by the time it spawns workers (with preload_app, the
      # gem loads with the app, after start began). A worker exec'd anew
      # (worker_exec true) serves from inside this very method.
      module Master
        WITHOUT_IT = "forks in unicorn's master (a sidecar from before_fork) keep the listeners"

        extend ListenersOpen

        private

        def spawn_missing_workers(*)
          Integrations.master(listeners: self.class::LISTENERS) { @logger } unless @worker_data
          super
        end
      end

      # Prepended to Unicorn::HttpServer: a listener bound later, by the
      # master or by a worker (after_fork may listen on a port of its own),
      # is the server's too.
      module Listen
        WITHOUT_IT = "a listener a worker binds in after_fork is not the server's"

        def listen(*)
          super.tap { Integrations.master(listeners: self.class::LISTENERS) { @logger } }
        end
      end

      # Prepended to Unicorn::HttpServer: unicorn's own calls of fork, and
      # nothing around them, are the server's: a worker, and the new master
      # of a USR2 upgrade (fork, then exec), keep the listeners. A hook of
      # the app's (before_fork runs just before) forks through Kernel as the
      # app's code, and its child lets the port go.
      module OwnForks
        WITHOUT_IT = "unicorn's own forks of workers are not marked"

        private

        def fork(...)
          ForkSafe.server_fork { super }
        end
      end

      # Prepended to Unicorn::HttpParser (which Unicorn::HttpRequest names):
      # both kinds of hijack go through hijacked!, and from then on the app
      # closes the socket.
      module Hijack
        WITHOUT_IT = "a hijacked socket is not shut down when the app closes it"

        def hijacked!
          ClientSocket.into(env["unicorn.socket"])
          super
        end
      end
    end

    [Unicorn::Serving, Unicorn::Requests, Unicorn::ErrorResponses, Unicorn::Master, Unicorn::Listen,
     Unicorn::OwnForks]
      .each { |hook| install("Unicorn::HttpServer", hook, server: Unicorn) }
    install("Unicorn::HttpParser", Unicorn::Hijack, server: Unicorn)
  end
end
