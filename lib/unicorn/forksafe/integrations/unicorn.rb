# frozen_string_literal: true

require_relative "../client_socket"
require_relative "../integrations"

module ForkSafe
  module Integrations # rubocop:disable Style/Documentation (see integrations.rb)
    # Unicorn 4.x to 6.x. Unicorn already shuts down before close on its
    # normal path; its error path (handle_error) and the app's close of a
    # hijacked socket only close, so a forked child's reference kept the
    # client waiting. Each request is marked, and so are the master's forks.
    module Unicorn
      # Prepended to Unicorn::HttpServer.
      module HttpServer
        private

        def process_client(client, *)
          ForkSafe.config.server_logger ||= @logger
          # Kgio clients got ClientSocket by class; any other, one by one.
          client.extend(ClientSocket) unless client.is_a?(ClientSocket)
          ForkSafe.request(client) { super }
        end

        # Workers, and the new master of a USR2 upgrade, keep the listeners.
        def spawn_missing_workers(*)
          ForkSafe.server_fork { super }
        end

        def reexec(*)
          ForkSafe.server_fork { super }
        end
      end
    end

    when_defined("Unicorn::HttpServer") { |server| server.prepend(Unicorn::HttpServer) }
    # What Kgio's accept returns in unicorn up to 6.0, TCP and Unix alike.
    when_defined("Kgio::Socket") { |socket| socket.prepend(ClientSocket) }
  end
end
