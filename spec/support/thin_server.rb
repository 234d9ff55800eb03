# frozen_string_literal: true

require_relative "servers"

module Support
  # Real Thin processes (Debian's thin 1.8, on EventMachine) on the harness
  # of Servers, for a spec that includes both.
  module ThinServer
    # Thin is in no bundle of this project: it runs without bundle exec's
    # variables, on the gems installed. threaded: the app runs in
    # EventMachine's defer threads (--threaded), so a request is in the app
    # while the reactor accepts, serves others and begins a graceful stop.
    # env: more environment (RUBYOPT too).
    def start_thin(gem: true, threaded: false, env: {})
      dir = server_dir
      port = free_port
      unbundled = ENV.keys.grep(/\ABUNDLER?_|\ARUBYOPT\z/).to_h { |name| [name, nil] }
      start_server(dir, port, gem:, env: unbundled.merge(env),
                              command: [executable("thin"), "-R", Servers::APP, "-e", "production",
                                        "-a", "127.0.0.1", "-p", port.to_s, *("--threaded" if threaded), "start"])
    end
  end
end
