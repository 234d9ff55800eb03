# frozen_string_literal: true

module ForkSafe
  # Installs each server integration when its class exists: at once if the
  # server is loaded already, else when the class body ends (the gem may be
  # required first, from a Gemfile, while the server loads later or lazily
  # through autoload). Nothing here loads a server.
  module Integrations
    @pending = {} # class name => installer
    @trace = TracePoint.new(:end) { |tp| body_ended(tp.self) }
    MODULE_NAME = Module.instance_method(:name)

    class << self
      def when_defined(name, &install)
        target = resolve(name)
        return install.call(target) if target

        @pending[name] = install
        @trace.enable unless @trace.enabled?
      end

      private

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
