# frozen_string_literal: true

require_relative "../core"

module ForkSafe
  module Integrations
    # Wraps a Rack app for a server that hands the client socket to a
    # callable of the response and never closes it itself: a "rack.hijack"
    # proc in the headers, or a Rack 3 streaming body (one that responds to
    # call and not to each). The callable closes the socket; it gets the
    # socket extended with ClientSocket, so that close is a shutdown too.
    class ResponseCallbacks
      def initialize(app)
        @app = app
      end

      def call(env)
        status, headers, body = @app.call(env)
        hijack = headers["rack.hijack"] if headers.is_a?(Hash)
        headers = headers.merge("rack.hijack" => with_client_socket(hijack)) if hijack
        body = StreamingBody.new(body) if !body.respond_to?(:each) && body.respond_to?(:call)
        [status, headers, body]
      end

      private

      def with_client_socket(callable)
        ->(io) { callable.call(ClientSocket.into(io)) }
      end

      # A Rack 3 streaming body, called with the client socket.
      class StreamingBody
        def initialize(body)
          @body = body
        end

        def call(stream)
          @body.call(ClientSocket.into(stream))
        end

        def close
          @body.close if @body.respond_to?(:close)
        end
      end
    end
  end
end
