# frozen_string_literal: true

# require "unicorn/forksafe/fork": ForkSafe.fork alone, with no fork hook
# and no server integration.
require_relative "core"
