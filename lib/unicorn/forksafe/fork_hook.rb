# frozen_string_literal: true

require_relative "fork"

module ForkSafe
  # Process._fork is what Kernel#fork, Process.fork and IO.popen("-") call
  # since Ruby 3.1. Prepending is idempotent and leaves other hooks in the
  # chain, as ActiveSupport's ForkTracker does.
  module ForkHook
    def _fork
      return super unless ForkSafe.config.fork_hook

      plan = ForkSafe.child_plan
      pid = super
      ForkSafe.forked(pid, plan)
      pid
    end
  end
end

Process.singleton_class.prepend(ForkSafe::ForkHook)
