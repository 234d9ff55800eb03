# frozen_string_literal: true

# require "unicorn/forksafe": the native core, the policy, the fork hook that
# applies it to every fork, the unicorn, puma, pitchfork, Thin and Passenger
# integrations (installed when those servers load, before or after this
# file) and ForkSafe::Rack for other servers, and a Railtie once Rails is loaded
# (config.forksafe, Rails.logger). require "unicorn/forksafe/fork" instead
# for ForkSafe.fork alone: no hook, no integration.
require_relative "forksafe/core"
require_relative "forksafe/fork"
require_relative "forksafe/fork_hook"
require_relative "forksafe/integrations/unicorn"
require_relative "forksafe/integrations/puma"
require_relative "forksafe/integrations/thin"
require_relative "forksafe/integrations/passenger"
require_relative "forksafe/integrations/pitchfork"
require_relative "forksafe/integrations/rack"
require_relative "forksafe/integrations/rails"
