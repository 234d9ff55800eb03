# frozen_string_literal: true

require_relative "core"

module ForkSafe
  # Installs each server integration when its class has the methods it
  # hooks: at once if the server is loaded already, else when a require
  # that loads it returns (the gem may be required first, from a Gemfile,
  # while the server loads later, lazily through autoload, or a class at a
  # time: puma opens Puma::Cluster in one file and defines spawn_worker in
  # another, both under the require of its launcher). Servers are loaded by
  # require, autoload included, which calls Kernel#require, and so is
  # watched: no TracePoint, which would slow every class body, turn MJIT off
  # for good on Ruby 3.1 and keep YJIT from its best code. Nothing here
  # loads a server.
  #
  # Each protection is a module prepended to the method the server calls at
  # that point. A server version without that method would leave the
  # protection silently off, so when the process starts serving, each hook
  # whose class is loaded but still lacks the method is said once, through
  # the server's logger, and from then on nothing is waited for (the
  # Railtie alone, in a bundle that has Rails, is waited for until Rails
  # loads: a server may load the app after it starts serving).
  module Integrations
    @pending = Hash.new { |pending, name| pending[name] = [] } # class name => [[hooks, server]]
    @served = false
    @parts = Hash.new { |parts, name| parts[name] = name.split("::").freeze } # a require asks them all

    # Prepended to Kernel's singleton class (Bundler.require calls
    # Kernel.require), and privately to Kernel: a require has returned, and
    # may have defined a class waited for.
    module Requires
      def require(path)
        super.tap { Integrations.required }
      end
    end

    # Kernel's instance method stays private.
    module KernelRequires
      include Requires
      private :require
    end
    Kernel.prepend(KernelRequires)
    Kernel.singleton_class.prepend(Requires)

    class << self
      # Prepends to the class named `name` the first of `hooks` whose
      # methods it all has. Each hook names what is lost without it in
      # WITHOUT_IT; `server` is the integration, whose version names the
      # server's.
      def install(name, *hooks, server:)
        target = resolve(name)
        return if target && prepended?(target, hooks)
        return if @served && !waits_past_serving?(hooks) # see stop_waiting

        @pending[name] << [hooks, server]
      end

      # Where the server starts serving requests in this process (see
      # ForkSafe.serving), and on a request in a process that does not
      # serve yet (the app loaded the gem after the start). The block gives
      # the server's logger.
      def serving(listeners: nil)
        ForkSafe.serving(yield, listeners: listening(listeners))
        stop_waiting unless @served
      end

      # Where the server binds or inherits its listeners in this process
      # (see ForkSafe.master). The block gives the server's logger.
      def master(listeners: nil)
        ForkSafe.master(yield, listeners: listening(listeners))
      end

      # Those of a server's listener objects still open (a stop closes
      # them, and they may stay in its list).
      def listening(ios)
        ios&.reject { |io| (io.respond_to?(:to_io) ? io.to_io : io).closed? }
      end

      # From Requires: hooks the classes waited for that are defined now.
      def required
        return if @pending.empty?

        names = @pending.keys # installed deletes from it
        names.each { |name| installed(name) }
      end

      private

      # A hook whose methods are the class's own (Pitchfork.clean_fork) says
      # so with target.
      def prepended?(target, hooks)
        target = hooks.first.target(target) if hooks.first.respond_to?(:target)
        hook = hooks.find { |candidate| hook_points(candidate).all? { |name| defines?(target, name) } }
        target.prepend(hook) if hook
      end

      def hook_points(hook)
        hook.instance_methods(false) + hook.private_instance_methods(false)
      end

      def defines?(target, name)
        target.method_defined?(name) || target.private_method_defined?(name)
      end

      # Prepends the hooks waiting for the class `name`, if it is loaded,
      # and has their methods.
      def installed(name)
        target = resolve(name) or return
        waiting = @pending[name]
        waiting.reject! { |hooks, _| prepended?(target, hooks) }
        @pending.delete(name) if waiting.empty?
      end

      # By now the server's classes are loaded: a hook still waiting for a
      # loaded class waits for a method this version does not have, and is
      # said; one waiting for a class not loaded waits for a server this
      # process does not run. Nothing waits from here on, in this process
      # or its forks, but a hook that says it waits past
      # serving (the Railtie: unicorn without preload_app loads the app
      # after its worker starts serving).
      def stop_waiting
        @served = true
        report_missing
        @pending.select! { |_, waiting| waiting.any? { |hooks, _| waits_past_serving?(hooks) } }
      end

      def waits_past_serving?(hooks)
        hooks.first.respond_to?(:waits_past_serving?) && hooks.first.waits_past_serving?
      end

      def report_missing
        @pending.each do |name, waiting|
          target = resolve(name) or next
          waiting.each { |hooks, server| ForkSafe.config.logger.warn(missing(target, hooks, server)) }
        end
      end

      def missing(target, hooks, server)
        points = hooks.flat_map { |hook| hook_points(hook).map { |point| "#{target}##{point}" } }
        "forksafe: #{server.version} has no #{points.uniq.join(" or ")}: #{hooks.first::WITHOUT_IT}"
      end

      # The constant if it is loaded; an autoload not yet run does not count.
      def resolve(name)
        @parts[name].reduce(Object) do |scope, part|
          return nil unless scope.const_defined?(part, false) && !scope.autoload?(part)

          scope.const_get(part, false)
        end
      end
    end
  end
end
