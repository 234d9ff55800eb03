# frozen_string_literal: true

require "socket"
require "timeout"
require "unicorn/forksafe"
require_relative "support/clock"
require_relative "support/processes"
require_relative "support/sockets"
require_relative "support/http"
require_relative "support/servers"
require_relative "support/nginx"
require_relative "support/proc_table"
require_relative "support/versions"
require_relative "support/forking_server_examples"
require_relative "support/deploy"
require_relative "support/thin_server"
require_relative "support/passenger_server"
require_relative "support/fiber_scheduler"

# The suite's process is a server's that serves, as a worker is: its forks
# are app code. A process the gem knows no server in (:unknown) is made in
# a child, which starts so (see spec/roles_spec.rb). No logger: the
# configuration's default stays to be seen.
ForkSafe.serving(nil)

RSpec.configure do |config|
  config.include Support::Processes
  config.include Support::Sockets
  config.include Support::Servers
  config.include Support::Nginx
  config.include Support::ProcTable
  config.include Support::ThinServer
  config.include Support::PassengerServer
  config.disable_monkey_patching!
  config.order = :random
  # spec/native tests the native core alone: no hook acting on their forks.
  config.define_derived_metadata(file_path: %r{/spec/native/}) { |meta| meta[:without_hook] = true }
  config.around(:each, :without_hook) do |example|
    ForkSafe.config.fork_hook = false
    example.run
  ensure
    ForkSafe.config.fork_hook = true
  end

  config.after do
    stop_servers
    reap_children
    close_tracked
  end
end
