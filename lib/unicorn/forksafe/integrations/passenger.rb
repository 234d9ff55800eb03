# frozen_string_literal: true

require "logger"
require_relative "../core"
require_relative "../integrations"

module ForkSafe
  module Integrations # rubocop:disable Style/Documentation (see integrations.rb)
    # Phusion Passenger 6, smart and direct spawning. An app process
    # (RequestHandler) serves each connection from Passenger's core, and
    # its own HTTP socket, on a thread of its own (ThreadHandler), and ends
    # it with close_write (shutdown(SHUT_WR)) before close: the core sees
    # EOF at once, whoever else holds the socket. A socket the app closes
    # itself (a hijack) is only closed.
    #
    # Smart spawning's preloader gets no role, and no hook: it loads the
    # app, accepts the core's spawn command on a Unix socket, and forks a
    # child that answers on that accepted connection, then closes the
    # preloader's listener itself. The hand-off is the point of the fork, so
    # any pass there would end it: neutralized, the connection gives the
    # child EPIPE, and the core "Web application could not be started".
    # Serving no client, the preloader has nothing a pass would protect. Its
    # children, like a directly spawned app process, serve from main_loop.
    module Passenger
      def self.version
        "passenger #{::PhusionPassenger::VERSION_STRING}"
      end

      # Prepended to PhusionPassenger::RequestHandler: the app process
      # serves requests from here on (its listeners are bound, the app is
      # loaded, and the ThreadHandler threads start in here).
      module Serving
        WITHOUT_IT = "forks from threads other than a request's keep the listeners"

        def main_loop(*)
          Integrations.serving { Logger.new($stderr) }
          super
        end
      end

      # Prepended to PhusionPassenger::Rack::ThreadHandlerExtension, the
      # module Passenger includes into ThreadHandler when it loads (before
      # the app, so before or after the gem: a prepend reaches a class that
      # included the module already). connection wraps the socket (to_io).
      module Requests
        WITHOUT_IT = "requests are not marked"

        def process_request(env, connection, *)
          ForkSafe.request(connection) { super }
        end
      end

      # Prepended to PhusionPassenger::RequestHandler::ThreadHandler: the
      # app it calls gets a rack.hijack that hands it the socket as a
      # ClientSocket, so that its close is a shutdown too. Passenger's own
      # response hijack takes the socket through the same env entry.
      module Hijack
        WITHOUT_IT = "a hijacked socket is not shut down when the app closes it"

        def initialize(request_handler, options = {})
          super(request_handler, options.merge(app: HijackedApp.new(options[:app])))
        end
      end

      # The app, called with env["rack.hijack"] handing out ClientSockets.
      HijackedApp = Struct.new(:app) do
        def call(env)
          hijack = env["rack.hijack"]
          env["rack.hijack"] = -> { ClientSocket.into(hijack.call) } if hijack
          app.call(env)
        end
      end
    end

    install("PhusionPassenger::RequestHandler", Passenger::Serving, server: Passenger)
    install("PhusionPassenger::Rack::ThreadHandlerExtension", Passenger::Requests, server: Passenger)
    install("PhusionPassenger::RequestHandler::ThreadHandler", Passenger::Hijack, server: Passenger)
  end
end
