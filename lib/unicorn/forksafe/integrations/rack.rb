# frozen_string_literal: true

require_relative "../core"

module ForkSafe
  # Rack middleware for servers without an integration (WEBrick, ...):
  #
  #   use ForkSafe::Rack
  #
  # It marks each request, so the app's forks release the listeners, and
  # registers the request's socket when the server puts it in the env, so a
  # child neutralizes it even when no listener explains it. Accepted
  # connections are neutralized in children without it; unicorn, puma and
  # pitchfork need none of it.
  class Rack
    SOCKET_KEYS = %w[unicorn.socket puma.socket pitchfork.socket rack.hijack_io].freeze

    def initialize(app)
      @app = app
    end

    def call(env)
      ForkSafe.request(socket(env)) { @app.call(env) }
    end

    private

    def socket(env)
      SOCKET_KEYS.each do |key|
        io = env[key]
        io = io.to_io if io.respond_to?(:to_io)
        return io if io.is_a?(BasicSocket) && !io.closed?
      end
      nil
    end
  end
end
