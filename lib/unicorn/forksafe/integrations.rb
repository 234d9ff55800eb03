# frozen_string_literal: true

require_relative "core"

module ForkSafe
  # Installs each server integration when its class has the methods it
  # hooks: at once if the server is loaded already, else when a body of
  # that class ends (the gem may be required first, from a Gemfile, while
  # the server loads later, lazily through autoload, or a class at a time:
  # puma opens Puma::Cluster in one file and defines spawn_worker in
  # another). Nothing here loads a server.
  #
  # Each protection is a module prepended to the method the server calls at
  # that point. A server version without that method would leave the
  # protection silently off, so when the process starts serving, each hook
  # whose class is loaded but still lacks the method is said once, through
  # the server's logger.
  #
  # Waiting has a cost: a trace on the end of every class body, which slows
  # an app that opens many. So it runs only while a body it waits for can
  # end: while the top-level namespace of a class it waits for is defined
  # (Puma for Puma::Server), and never once the process serves, by when the
  # server's classes are all loaded: under unicorn, puma's never are. Ruby
  # 3.2 says when a namespace appears (const_added); on 3.1 each require
  # is watched instead, and when one returns, the classes it loaded are
  # hooked and the trace is on only if a namespace waited for is there. So
  # a process that never loads a server (a job runner, a console) never
  # traces: on 3.1 a TracePoint would also turn MJIT off for good. (The
  # Railtie alone, in a bundle that has Rails, is waited for until Rails
  # loads: a server may load the app after it starts serving.)
  module Integrations
    @pending = Hash.new { |pending, name| pending[name] = [] } # class name => [[hooks, server]]
    @trace = TracePoint.new(:end) { |tp| body_ended(tp.self) }
    @served = false
    MODULE_NAME = Module.instance_method(:name)
    # Ruby >= 3.2 calls const_added when a constant is set: a namespace appears.
    CONST_ADDED = Module.private_method_defined?(:const_added)

    # Prepended to Object's singleton class: a top-level constant was set,
    # such as Puma by `module Puma` before its body defines Puma::Server.
    # Every class's singleton class inherits this one, so the receiver is
    # checked first: constants set in other classes are no namespace.
    module TopLevelConstants
      private

      def const_added(name)
        super
        Integrations.namespace_added if Object.equal?(self)
      end
    end
    Object.singleton_class.prepend(TopLevelConstants) if CONST_ADDED

    # Prepended to Kernel where const_added is not called (Ruby 3.1): a
    # require has returned, and may have defined a namespace, or a class
    # waited for whole while no trace was on.
    module Requires
      private

      def require(path)
        super.tap { Integrations.required }
      end
    end
    Kernel.prepend(Requires) unless CONST_ADDED

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
        trace_while_useful
      end

      # Where the server starts serving requests in this process, and on
      # each request (the app may have loaded the gem after the start): see
      # ForkSafe.serving. The block gives the server's logger.
      def serving
        return if ForkSafe.serving?

        ForkSafe.serving(yield)
        stop_waiting unless @served
      end

      # Where the server binds or inherits its listeners in this process
      # (see ForkSafe.master). The block gives the server's logger.
      def master
        ForkSafe.master(yield) if ForkSafe.role == :unknown
      end

      # From TopLevelConstants: a namespace may hold a class waited for.
      def namespace_added
        trace_while_useful unless @trace.enabled?
      end

      # From Requires: hooks the classes waited for that are defined now,
      # then traces only while a namespace waited for is defined.
      def required
        @pending.each_key.filter_map { |name| resolve(name) }.each { |target| body_ended(target) }
        trace_while_useful
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

      # Module#name itself: some classes redefine name.
      def body_ended(mod)
        name = MODULE_NAME.bind_call(mod)
        waiting = @pending[name] if @pending.key?(name)
        return unless waiting

        waiting.reject! { |hooks, _| prepended?(mod, hooks) }
        @pending.delete(name) if waiting.empty?
        trace_while_useful
      end

      # On, while a class waited for may still end a body (see above).
      def trace_while_useful
        useful = @pending.each_key.any? { |name| namespace?(name) }
        if !useful
          @trace.disable
        elsif !@trace.enabled? # Ruby 3.1 would add it again: it would run twice
          @trace.enable
        end
      end

      # Whether the top-level namespace of the class `name` is defined, or
      # set to autoload.
      def namespace?(name)
        Object.const_defined?(name.split("::", 2).first, false)
      end

      # By now the server's classes are loaded: a hook still waiting for a
      # loaded class waits for a method this version does not have, and is
      # said; one waiting for a class not loaded waits for a server this
      # process does not run. Nothing waits, nor traces, from here on, in
      # this process or its forks, but a hook that says it waits past
      # serving (the Railtie: unicorn without preload_app loads the app
      # after its worker starts serving).
      def stop_waiting
        @served = true
        report_missing
        @pending.select! { |_, waiting| waiting.any? { |hooks, _| waits_past_serving?(hooks) } }
        trace_while_useful
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
        name.split("::").reduce(Object) do |scope, part|
          return nil unless scope.const_defined?(part, false) && !scope.autoload?(part)

          scope.const_get(part, false)
        end
      end
    end
  end
end
