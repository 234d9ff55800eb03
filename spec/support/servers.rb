# frozen_string_literal: true

require "fileutils"
require "tmpdir"
require "rbconfig"
require_relative "http"
require_relative "proc_table"
require_relative "tls"

module Support
  # Real pitchfork processes (a monitor, a mold and workers, and their
  # reforks) on the harness of Servers, for a spec that includes both (Servers
  # itself is as long as RuboCop lets a module be).
  module PitchforkServer
    # config: more lines for pitchfork.rb (refork_after, for one); env:
    # more environment.
    def start_pitchfork(gem: true, workers: 1, timeout: 30, config: "", env: {})
      dir = server_dir
      config = config_file(dir, "pitchfork.rb", <<~CONFIG)
        worker_processes #{workers}
        timeout #{timeout}
        setpgid false # pitchfork's children stay in the server's group, for cleanup
        #{config}
      CONFIG
      port = free_port
      # Pitchfork's promotion lock files go to TMPDIR: the server's
      # directory, removed with it.
      start_server(dir, port, gem:, env: { "TMPDIR" => dir, **env },
                              command: [executable("pitchfork"), "-E", "production", "-c", config,
                                        "-l", "127.0.0.1:#{port}", Servers::APP])
    end
  end

  # A server's graceful stop, and what it leaves behind.
  module Stops
    include ProcTable

    # How long a wait that spans a server's stopping of a worker allows: a
    # puma process may hang in its own shutdown, gem or not, its server
    # thread parked for ever in IO#close of the notify pipe its signal
    # handler is writing to (puma issue 3677, in every puma of the matrix;
    # seen here on Debian 13's Ruby 3.3, both cores kept busy by other
    # processes: 2 hangs in 15 TERMs of a cluster, 3 in 60 of single mode).
    # A cluster's master kills such a worker past worker_shutdown_timeout,
    # 30 s.
    WORKER_STOP = 45
    # How long an orphan lives that a stop is to leave holding the port:
    # longer than any stop may take, or the port's check could find it
    # gone. The cleanup kills it with the server's process group.
    ORPHAN_LIFE = WORKER_STOP + 15

    # Sends a signal to the server's master and waits until it has exited.
    # A puma found hung in its own shutdown at the limit is killed, with a
    # warning: in single mode no master does it (see WORKER_STOP). What the
    # example asserts after the stop (the port, the orphan) holds as well
    # after a kill; any other process that outlives the limit fails it.
    def stop_server(server, signal = :QUIT, limit: WORKER_STOP)
      Process.kill(signal, server.pid)
      Timeout.timeout(limit) { Process.wait(server.pid) }
    rescue Timeout::Error
      raise Timeout::Error, "still running #{limit}s after #{signal}: #{threads(server.pid)}" \
        unless hung_in_puma_shutdown?(server.pid)

      warn "puma #{server.pid} hung in its own shutdown (puma issue 3677): killed"
      Process.kill(:KILL, server.pid)
      Process.wait(server.pid)
    end

    # Process `pid`'s threads, for a message: "name state wchan, ...".
    def threads(pid) = threads_of(pid).join(", ")

    # Puma's hang as /proc shows it: its server thread ("puma srv") asleep
    # on a futex in its last steps, its thread pool and reactor gone (every
    # request ended), and no thread running. A hang in a request, in a
    # close of a client, or a thread spinning is some other hang.
    def hung_in_puma_shutdown?(pid)
      threads = threads_of(pid)
      threads.none? { |task| task.running? || task.name.start_with?("puma srv tp", "puma reactor") } &&
        threads.any? { |task| task.name == "puma srv" && task.asleep_on_futex? }
    rescue SystemCallError
      false
    end

    # Whether the port binds once the server has stopped, while an orphan
    # (forked by the request the block makes) still lives.
    def orphan_after_stop(server, signal, limit: WORKER_STOP)
      raise "the request forked no child" unless yield(server).include?("forked")

      stop_server(server, signal, limit:)
      port_free?(server.port) ? :port_free : :port_held
    end

    # Whether a new server can bind the port on 127.0.0.1.
    def port_free?(port)
      TCPServer.new("127.0.0.1", port).close
      true
    rescue Errno::EADDRINUSE
      false
    end
  end

  # Real unicorn, puma and WEBrick processes serving spec/fixtures/forking_app.ru
  # on loopback. Each runs in its own process group, so cleanup also kills
  # the children the app forked.
  module Servers
    include Http
    include Stops
    include Tls

    APP = File.expand_path("../fixtures/forking_app.ru", __dir__)
    LIB = File.expand_path("../../lib", __dir__)

    # port: the TCP port on 127.0.0.1, or socket: a Unix socket path.
    Server = Struct.new(:pid, :port, :socket, :dir, :log, keyword_init: true)

    # unix: true listens on a Unix socket in the server's directory instead.
    # config: more lines for unicorn.rb; env: more environment.
    def start_unicorn(gem: true, workers: 1, timeout: 30, unix: false, preload: true, config: "", env: {})
      dir = server_dir
      config = config_file(dir, "unicorn.rb", <<~CONFIG)
        worker_processes #{workers}
        timeout #{timeout}
        preload_app #{preload}
        #{config}
      CONFIG
      address = unix ? File.join(dir, "unicorn.sock") : free_port
      listen = unix ? address : "127.0.0.1:#{address}"
      start_server(dir, address, gem:, env:, command: [executable("unicorn"), "-E", "production",
                                                       "-c", config, "-l", listen, APP])
    end

    # options: more command-line options (e.g. --fork-worker); config:
    # lines for a config file. tls: serve TLS with a self-signed certificate.
    def start_puma(gem: true, threads: 2, workers: 0, env: {}, options: [], config: nil, tls: false)
      dir = server_dir
      port = free_port
      bind = tls ? "ssl://127.0.0.1:#{port}?#{self_signed(dir)}&verify_mode=none" : "tcp://127.0.0.1:#{port}"
      options += ["-C", config_file(dir, "puma.rb", config)] if config
      start_server(dir, port, gem:, env:, command: [executable("puma"), "-e", "production",
                                                    "-t", "#{threads}:#{threads}", "-w", workers.to_s,
                                                    "-b", bind, *options, APP])
    end

    # WEBrick through rackup: a Rack server the gem has no integration for.
    def start_webrick(gem: true, middleware: true)
      dir = server_dir
      port = free_port
      start_server(dir, port, gem:, env: { "FORKSAFE_MIDDLEWARE" => middleware ? "1" : "0" },
                              command: [executable("rackup"), "-E", "production", "-s", "webrick", "-o", "127.0.0.1",
                                        "-p", port.to_s, APP])
    end

    def stop_servers
      servers.each do |server|
        kill_group(server.pid)
        FileUtils.rm_rf(server.dir)
      end
      servers.clear
    end

    def servers
      @servers ||= []
    end

    # Waits until the server's log has `count` lines matching `pattern`;
    # returns how many it has then.
    def wait_for_log(server, pattern, count, limit: 20)
      poll(limit, -> { "not #{count} lines #{pattern.inspect} after #{limit}s:\n#{File.read(server.log)}" }) do
        seen = File.readlines(server.log).grep(pattern).size
        seen if seen >= count
      end
    end

    private

    # A gem's own executable (Debian installs some in /usr/bin only), or a
    # program on the PATH or in /usr/sbin (nginx). Not RubyGems' wrappers in
    # Gem.bindir: they load the bundle's version of the gem's file, which
    # for a Debian gem is not where its spec says.
    def executable(name)
      dirs = ENV.fetch("PATH").split(File::PATH_SEPARATOR) - [Gem.bindir] + %w[/usr/sbin]
      [gem_executable(name), *dirs.map { |dir| File.join(dir, name) }].compact
                                                                      .find { |path| File.executable?(path) } ||
        raise("no #{name} executable found")
    end

    def gem_executable(name)
      Gem::Specification.find_by_name(name).bin_file(name)
    rescue Gem::MissingSpecError
      nil
    end

    # Writes a server's config file; returns its path.
    def config_file(dir, name, text) = File.join(dir, name).tap { |path| File.write(path, text) }

    def server_dir
      Dir.mktmpdir("forksafe-e2e")
    end

    # address: a TCP port on 127.0.0.1, or a Unix socket path. command: a
    # Ruby script and its arguments, or program: any executable. lib: the
    # gem's lib directory on the load path (nil: the gem comes installed).
    def start_server(dir, address, gem:, command:, env: {}, program: [RbConfig.ruby, *command], lib: LIB)
      log = File.join(dir, "server.log")
      env = env.merge("FORKSAFE_GEM" => gem ? "1" : "0",
                      "RUBYLIB" => [lib, ENV.fetch("RUBYLIB", nil)].compact.join(":"))
      pid = Process.spawn(env, *program, pgroup: true, chdir: dir, out: log, err: log, in: File::NULL)
      server = Server.new(pid:, dir:, log:, **(address.is_a?(Integer) ? { port: address } : { socket: address }))
      servers << server
      wait_for_listener(server)
      server
    end

    def wait_for_listener(server, limit: 20)
      poll(limit, -> { "server not listening after #{limit}s:\n#{File.read(server.log)}" }) do
        connect(server).close.nil?
      rescue Errno::ECONNREFUSED, Errno::ENOENT
        raise "server exited before listening:\n#{File.read(server.log)}" if Process.wait(server.pid, Process::WNOHANG)
      end
    end

    def connect(server)
      server.port ? TCPSocket.new("127.0.0.1", server.port) : UNIXSocket.new(server.socket)
    end

    def kill_group(pid)
      Process.kill(:KILL, -pid)
    rescue Errno::ESRCH
      nil
    ensure
      begin
        Process.wait(pid)
      rescue Errno::ECHILD
        nil
      end
    end
  end
end
