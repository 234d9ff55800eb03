# frozen_string_literal: true

require_relative "../client_socket"
require_relative "../integrations"

module ForkSafe
  module Integrations # rubocop:disable Style/Documentation (see integrations.rb)
    # Unicorn 4.x to 6.x. Unicorn shuts down before close on its normal
    # path; its error path (handle_error) and the app's close of a hijacked
    # socket only close, so a forked child's reference kept the client
    # waiting. Each request is marked, and so are the master's forks.
    module Unicorn
      # Prepended to Unicorn::HttpServer.
      module HttpServer
        # The errors for which unicorn writes no response.
        CLIENT_GONE = [EOFError, Errno::ECONNRESET, Errno::EPIPE, Errno::ENOTCONN].freeze

        private

        def process_client(*)
          ForkSafe.config.server_logger ||= @logger
          ForkSafe.request { super }
        end

        # handle_error writes an error response, then only closes. When the
        # client is already gone it writes nothing, so one shutdown first
        # does: that case runs once per request under a load tool that
        # closes its spare connections.
        def handle_error(client, error)
          ForkSafe.closing(client, writes_first: !client_gone?(error)) { super }
        end

        def client_gone?(error)
          CLIENT_GONE.any? { |gone| error.is_a?(gone) }
        end

        # Workers, and the new master of a USR2 upgrade, keep the listeners.
        def spawn_missing_workers(*)
          ForkSafe.server_fork { super }
        end

        def reexec(*)
          ForkSafe.server_fork { super }
        end
      end

      # Prepended to Unicorn::HttpParser (which Unicorn::HttpRequest names):
      # both kinds of hijack go through hijacked!, and from then on the app
      # closes the socket.
      module HttpRequest
        def hijacked!
          ClientSocket.into(env["unicorn.socket"])
          super
        end
      end
    end

    when_defined("Unicorn::HttpServer") { |server| server.prepend(Unicorn::HttpServer) }
    when_defined("Unicorn::HttpParser") { |request| request.prepend(Unicorn::HttpRequest) }
  end
end
