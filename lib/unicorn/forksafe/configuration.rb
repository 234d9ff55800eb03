# frozen_string_literal: true

require "logger"

module ForkSafe
  # Settings read at fork time, so they can change at any moment.
  class Configuration
    # What a user sets (ForkSafe.configure, or config.forksafe in Rails).
    SETTINGS = %i[fork_hook debug logger].freeze

    # Logs one line per child pass (FORKSAFE_DEBUG=1, true, yes or on sets
    # it too; 0, false, no, off or nothing leaves it off).
    attr_reader :debug
    # Where debug lines and warnings go when no logger is set: the app's
    # (Rails.logger: the Railtie gives something whose call returns it),
    # else the server's (which the integrations give, see
    # offer_server_logger), else $stderr.
    attr_accessor :app_logger
    attr_reader :server_logger

    def initialize
      @debug = %w[1 true yes on].include?(ENV.fetch("FORKSAFE_DEBUG", "").strip.downcase)
      @logger = nil
      @app_logger = nil
      @server_logger = nil
    end

    def logger
      @logger || @app_logger&.call || @server_logger || (@stderr_logger ||= Logger.new($stderr))
    end

    # false: the Process._fork hook does nothing (ForkSafe.fork still
    # works). The native core holds it, for the forks no Ruby hook sees
    # (fork(2) from C). The hook's install turns it on, unless it was set
    # already; without the hook it is off, and true raises.
    def fork_hook = Native.pass_unplanned?

    def fork_hook=(value)
      on = boolean("fork_hook", value)
      raise ArgumentError, 'fork_hook: the hook is not installed (require "unicorn/forksafe")' if on && !@hook

      @fork_hook_set = true
      Native.pass_unplanned(on)
    end

    # Called once by fork_hook.rb, after its prepends.
    def hook_installed
      @hook = true
      Native.pass_unplanned(true) unless @fork_hook_set
    end

    def debug=(value)
      @debug = boolean("debug", value)
    end

    # Anything with info and warn, as Logger has; nil for the default.
    def logger=(value)
      @logger = a_logger("logger", value)
    end

    # The server's logger, given where it takes a role (ForkSafe.master,
    # ForkSafe.serving): the first one given is kept.
    def offer_server_logger(value)
      logger = a_logger("logger", value)
      @server_logger = logger if @server_logger.nil?
    end

    private

    def a_logger(name, value)
      return value if value.nil? || (value.respond_to?(:info) && value.respond_to?(:warn))

      raise TypeError, "#{name}: expected a Logger (anything with info and warn), got #{value.class}"
    end

    def boolean(name, value)
      return value if [true, false].include?(value)

      raise ArgumentError, "#{name}: must be true or false, got #{value.inspect}"
    end
  end
end
