# frozen_string_literal: true

require_relative "core"

module ForkSafe
  # Installs each server integration when its class exists: at once if the
  # server is loaded already, else when the class body ends (the gem may be
  # required first, from a Gemfile, while the server loads later or lazily
  # through autoload). Nothing here loads a server.
  #
  # Each protection is a module prepended to the method the server calls at
  # that point. A server version without that method would leave the
  # protection silently off, so install checks, and the process says which
  # protection is missing once, through the server's logger when it starts
  # serving.
  module Integrations
    @pending = {} # class name => installer
    @trace = TracePoint.new(:end) { |tp| body_ended(tp.self) }
    @missing = []
    MODULE_NAME = Module.instance_method(:name)

    class << self
      def when_defined(name, &install)
        target = resolve(name)
        return install.call(target) if target

        @pending[name] = install
        @trace.enable unless @trace.enabled?
      end

      # Prepends to `target` the first of `hooks` whose methods it all has.
      # Each hook names what is lost without it in WITHOUT_IT; `server` is
      # the integration, whose version names the server's.
      def install(target, *hooks, server:)
        hook = hooks.find { |candidate| hook_points(candidate).all? { |name| defines?(target, name) } }
        return target.prepend(hook) if hook

        points = hooks.flat_map { |candidate| hook_points(candidate).map { |name| "#{target}##{name}" } }
        @missing << "forksafe: #{server.version} has no #{points.uniq.join(" or ")}: #{hooks.first::WITHOUT_IT}"
      end

      # Where the server starts serving requests in this process, and on
      # each request (the app may have loaded the gem after the start): see
      # ForkSafe.serving. The block gives the server's logger. Logs what
      # install found missing, once.
      def serving
        return if ForkSafe.serving?

        ForkSafe.serving(yield)
        @missing.shift(@missing.size).each { |line| ForkSafe.config.logger.warn(line) }
      end

      private

      def hook_points(hook)
        hook.instance_methods(false) + hook.private_instance_methods(false)
      end

      def defines?(target, name)
        target.method_defined?(name) || target.private_method_defined?(name)
      end

      # Module#name itself: some classes redefine name.
      def body_ended(mod)
        install = @pending.delete(MODULE_NAME.bind_call(mod)) or return
        @trace.disable if @pending.empty?
        install.call(mod)
      end

      # The constant if it is loaded; an autoload not yet run does not count.
      def resolve(name)
        name.split("::").reduce(Object) do |scope, part|
          return nil unless scope.const_defined?(part, false) && !scope.autoload?(part)

          scope.const_get(part, false)
        end
      end
    end
  end
end
