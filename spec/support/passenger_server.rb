# frozen_string_literal: true

require_relative "servers"

module Support
  # Real Phusion Passenger Standalone processes (Debian's passenger 6.0,
  # its builtin engine: no nginx to download) serving
  # spec/fixtures/passenger/config.ru, on the harness of Servers, for a spec
  # that includes both.
  #
  # Passenger daemonizes: its watchdog and the temp dir toucher each call
  # setsid, the core and its app processes make a process group of their
  # own, so the server's process group holds `passenger start` alone. Each
  # server marks the environment its processes inherit with its directory,
  # and its cleanup kills every process that has the mark, and every
  # process in the watchdog's session (the app processes' environment
  # reads as their process title once Ruby has set it).
  module PassengerServer
    include ProcTable

    APP = File.expand_path("../fixtures/passenger/config.ru", __dir__)
    MARK = "FORKSAFE_PASSENGER_DIR"

    # spawn_method: "smart" (a preloader loads the app and forks each app
    # process) or "direct". One app process, spawned (and with smart
    # spawning, its preloader) before this returns: a first request waits
    # for the spawn. max_requests: the app process exits after that many
    # requests (this one's included), and Passenger spawns another.
    # Passenger is in no bundle of this project: it runs with bundle exec's
    # variables gone, on the gems installed; its log (which has the app's
    # stderr) is followed into the server's log.
    def start_passenger(gem: true, spawn_method: "smart", max_requests: nil, env: {})
      dir = server_dir
      port = free_port
      unbundled = ENV.keys.grep(/\ABUNDLER?_|\ARUBYOPT\z/).to_h { |name| [name, nil] }
      options = passenger_options(dir, port) + ["--spawn-method", spawn_method]
      options += ["--max-requests", max_requests.to_s] if max_requests
      server = start_server(dir, port, gem:, env: { **unbundled, MARK => dir, "TMPDIR" => dir, **env },
                                       command: [executable("passenger"), "start", dir, *options])
      http_get(port, "/", limit: 30)
      server
    end

    # The app process's own HTTP listener (Passenger's HTTP helper socket),
    # its pid, and the headers a request there needs: [port, pid, headers].
    def passenger_app(server)
      port, pid, password = http_get(server.port, "/passenger_http").last.lines.last.split
      [Integer(port), Integer(pid), { "X-Passenger-Connect-Password" => password }]
    end

    # Whether the app process's HTTP port binds once that process has
    # exited, while an orphan forked by the request the block makes still
    # lives: the server must have been started with max_requests: 3, so
    # that this request is its last. (At a graceful stop Passenger kills
    # the app's process group, orphans included, gem or not.)
    def app_port_after_exit(server)
      port, app, = passenger_app(server)
      raise "the request forked no child" unless yield(server).include?("forked")

      poll(10, -> { "app process #{app} still alive after its last request" }) { !alive?(app) }
      TCPServer.new("127.0.0.1", port).close
      :port_free
    rescue Errno::EADDRINUSE
      :port_held
    end

    def stop_servers
      servers.each { |server| kill_marked(server.dir) }
      super
    end

    private

    def passenger_options(dir, port)
      ["--engine", "builtin", "--address", "127.0.0.1", "--port", port.to_s, "--environment", "production",
       "--rackup", APP, "--max-pool-size", "1", "--min-instances", "1", "--instance-registry-dir", dir,
       "--pid-file", File.join(dir, "passenger.pid"), "--log-file", File.join(dir, "passenger.log"),
       "--disable-security-update-check", "--disable-anonymous-telemetry", "--no-friendly-error-pages",
       "--disable-turbocaching"]
    end

    # Passenger's processes, killed until none is left (the watchdog may
    # start a core again in between). `sessions`: those led by one of them.
    def kill_marked(dir)
      sessions = []
      poll(10, -> { "processes of #{dir} still alive: #{marked(dir, sessions)}" }) do
        pids = marked(dir, sessions)
        pids.each { |pid| kill_and_wait(pid) }
        pids.empty?
      end
    end

    # The living processes whose environment has the mark (`passenger
    # start` and Passenger's agents), and every one in a session such a
    # process leads: the watchdog's holds the core, the preloader, the app
    # processes and what they fork, whose environment Ruby overwrote with
    # the process title.
    def marked(dir, sessions)
      living = living_processes("\0#{MARK}=#{dir}\0")
      sessions.concat(living.filter_map { |pid, session, own| pid if own && pid == session })
      living.filter_map { |pid, session, own| pid if own || sessions.include?(session) }
    end

    # [pid, session, whether its environment has `mark`] of each process
    # but the zombies (whose environment reads empty).
    def living_processes(mark)
      Dir.glob("/proc/[0-9]*").filter_map do |proc_dir|
        state, _, _, session = stat_fields(proc_dir)
        next if state == "Z"

        [Integer(File.basename(proc_dir)), Integer(session), "\0#{File.binread("#{proc_dir}/environ")}".include?(mark)]
      rescue Errno::ENOENT, Errno::ESRCH, Errno::EACCES
        next # exited while we looked, or not ours
      end
    end

    # Not a zombie either: the app process's parent may be gone too.
    def alive?(pid)
      stat_fields("/proc/#{pid}").first != "Z"
    rescue Errno::ENOENT, Errno::ESRCH
      false
    end
  end
end
