# frozen_string_literal: true

# require "unicorn/forksafe": the native core, the policy, and the fork hook
# that applies it to every fork. require "unicorn/forksafe/fork" instead for
# ForkSafe.fork alone, with no hook.
require_relative "forksafe/core"
require_relative "forksafe/fork"
require_relative "forksafe/fork_hook"
