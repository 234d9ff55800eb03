# frozen_string_literal: true

require "logger"

module ForkSafe
  # Settings read at fork time, so they can change at any moment.
  class Configuration
    # false: the Process._fork hook does nothing (ForkSafe.fork still works).
    attr_accessor :fork_hook
    # Logs one line per child pass (FORKSAFE_DEBUG=1 sets it too).
    attr_accessor :debug
    # Where debug lines and warnings go. Unset, the server's logger (which
    # the integrations give as server_logger), else $stderr.
    attr_writer :logger
    attr_accessor :server_logger

    def initialize
      @fork_hook = true
      @debug = !ENV.fetch("FORKSAFE_DEBUG", "").empty?
      @logger = nil
      @server_logger = nil
    end

    def logger
      @logger || @server_logger || (@stderr_logger ||= Logger.new($stderr))
    end
  end
end
