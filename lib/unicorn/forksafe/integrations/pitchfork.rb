# frozen_string_literal: true

require_relative "../core"
require_relative "../integrations"
require_relative "response_callbacks"
require_relative "unicorn"

module ForkSafe
  module Integrations # rubocop:disable Style/Documentation (see integrations.rb)
    # Pitchfork 0.18, Shopify's descendant of unicorn: a monitor, a mold
    # that forks the workers, and reforks (a worker that forks a new mold,
    # with its warmed heap, which forks the next generation of workers).
    # Its request path is unicorn's: the normal path shuts down before
    # close; the error path (handle_error) only closes, and a socket the
    # app closes in a hijack or a Rack 3 streaming body is only closed, so
    # a forked child's reference kept the client waiting. The hooks of the
    # methods pitchfork kept from unicorn are unicorn's: a worker serves
    # from worker_loop on (a mold, which runs mold_loop, never does), each
    # request is marked, and handle_error shuts down.
    module Pitchfork
      def self.version
        "pitchfork #{::Pitchfork::VERSION}"
      end

      # Prepended to Pitchfork::HttpServer: the app's response callables
      # get the socket as a ClientSocket. Pitchfork sets the app it built
      # from config.ru here (build_app!, in the first mold), after the
      # config.ru that requires the gem has run: the server is created
      # earlier, with a lambda that builds the app.
      module ResponseSockets
        WITHOUT_IT = "a socket the app closes in a response hijack or a streaming body is not shut down"

        def app=(app)
          super(ResponseCallbacks.new(app))
        end
      end

      # Prepended to Pitchfork::HttpParser: env["rack.hijack"] is the
      # parser, whose call hands the app the socket (a full hijack), and
      # from then on the app closes it.
      module FullHijack
        WITHOUT_IT = "a fully hijacked socket is not shut down when the app closes it"

        def call
          ClientSocket.into(super)
        end
      end

      # Prepended to Pitchfork::HttpServer: the process that binds the
      # listeners (the first mold, on Linux) is the server's master.
      module Master
        WITHOUT_IT = "forks in pitchfork's mold keep the listeners"

        extend ListenersOpen

        private

        def bind_listeners!(*)
          super.tap { Integrations.master(listeners: self.class::LISTENERS) { @logger } }
        end
      end

      # Prepended to Pitchfork::HttpServer: pitchfork forks each worker, and
      # each mold but the first, in fork_sibling; on Linux twice (a middle
      # process forks it and exits, so that it is the monitor's child). In a
      # refork the middle is forked by a worker, which serves: unmarked,
      # it would drop its references to the listening sockets, and so
      # would the new mold and every worker it forks, all left accepting
      # on a dead socket (EINVAL) while the port closes with the last old
      # worker. The monitor forks the first mold in spawn_initial_mold.
      module SpawnsChildren
        WITHOUT_IT = "pitchfork's own forks of workers and molds are not marked: a refork drops the listeners"

        private

        def fork_sibling(...)
          ForkSafe.server_fork { super }
        end

        def spawn_initial_mold(...)
          ForkSafe.server_fork { super }
        end
      end

      # Prepended to Pitchfork's singleton class: clean_fork is its own fork
      # of a worker or mold, from the monitor, a mold, or fork_sibling's
      # middle process, whose marks (its parent's) count for nothing.
      module CleanFork
        WITHOUT_IT = "the middle process's fork of a worker is not marked: the worker drops the listeners"

        def self.target(pitchfork) = pitchfork.singleton_class

        def clean_fork(...)
          ForkSafe.server_fork { super }
        end
      end
    end

    [Unicorn::Serving, Unicorn::Requests, Unicorn::ErrorResponses, Unicorn::Listen, Pitchfork::ResponseSockets,
     Pitchfork::Master,
     Pitchfork::SpawnsChildren].each { |hook| install("Pitchfork::HttpServer", hook, server: Pitchfork) }
    install("Pitchfork", Pitchfork::CleanFork, server: Pitchfork)
    install("Pitchfork::HttpParser", Pitchfork::FullHijack, server: Pitchfork)
  end
end
