# frozen_string_literal: true

require "socket"
require "timeout"
require "unicorn/forksafe"
require_relative "support/processes"
require_relative "support/sockets"

RSpec.configure do |config|
  config.include Support::Processes
  config.include Support::Sockets
  config.disable_monkey_patching!
  config.order = :random
  config.after do
    reap_children
    close_tracked
  end
end
