# frozen_string_literal: true

require_relative "fork"

module ForkSafe
  # Process._fork is what Kernel#fork, Process.fork and IO.popen("-") call
  # since Ruby 3.1. Prepending is idempotent and leaves other hooks in the
  # chain, as ActiveSupport's ForkTracker does.
  module ForkHook
    def _fork
      pid = super
      if ForkSafe.config.fork_hook
        pid.zero? ? ForkSafe.after_fork_in_child : ForkSafe.after_fork_in_parent
      end
      pid
    end
  end
end

Process.singleton_class.prepend(ForkSafe::ForkHook)
