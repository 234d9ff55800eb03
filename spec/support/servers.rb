# frozen_string_literal: true

require "tmpdir"
require "rbconfig"

module Support
  # Real unicorn and puma processes serving spec/fixtures/forking_app.ru on
  # loopback. Each runs in its own process group, so cleanup also kills the
  # children the app forked.
  module Servers
    include Http

    APP = File.expand_path("../fixtures/forking_app.ru", __dir__)
    LIB = File.expand_path("../../lib", __dir__)

    Server = Struct.new(:pid, :port, :dir, :log, keyword_init: true)

    def start_unicorn(gem: true, workers: 1, timeout: 30)
      dir = server_dir
      File.write(File.join(dir, "unicorn.rb"), <<~CONFIG)
        worker_processes #{workers}
        timeout #{timeout}
        preload_app true
      CONFIG
      start_server(dir, gem, [executable("unicorn"), "-c", File.join(dir, "unicorn.rb")],
                   ->(port) { ["-l", "127.0.0.1:#{port}", APP] })
    end

    def start_puma(gem: true, threads: 2, workers: 0)
      dir = server_dir
      start_server(dir, gem, [executable("puma"), "-t", "#{threads}:#{threads}", "-w", workers.to_s],
                   ->(port) { ["-b", "tcp://127.0.0.1:#{port}", APP] })
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

    def free_port
      server = TCPServer.new("127.0.0.1", 0)
      server.addr[1]
    ensure
      server&.close
    end

    def wait_for_port(port, pid, log, limit: 20)
      deadline = monotonic + limit
      loop do
        TCPSocket.new("127.0.0.1", port).close
        return
      rescue Errno::ECONNREFUSED
        raise "server exited before listening:\n#{File.read(log)}" if Process.wait(pid, Process::WNOHANG)
        raise "server not listening on #{port} after #{limit}s:\n#{File.read(log)}" if monotonic > deadline

        sleep 0.05
      end
    end

    # Sends a signal to the server's master and waits until it has exited.
    def stop_server(server, signal = :QUIT, limit: 20)
      Process.kill(signal, server.pid)
      Timeout.timeout(limit) { Process.wait(server.pid) }
    end

    private

    # The gem's own executable; Debian installs unicorn's in /usr/bin only.
    def executable(name)
      file = Gem::Specification.find_by_name(name).bin_file(name)
      return file if File.exist?(file)

      ENV.fetch("PATH").split(File::PATH_SEPARATOR).map { |dir| File.join(dir, name) }
         .find { |path| File.executable?(path) } || raise("no #{name} executable found")
    end

    def server_dir
      Dir.mktmpdir("forksafe-e2e")
    end

    def start_server(dir, gem, command, listen_args)
      port = free_port
      log = File.join(dir, "server.log")
      env = { "FORKSAFE_GEM" => gem ? "1" : "0", "RUBYLIB" => [LIB, ENV.fetch("RUBYLIB", nil)].compact.join(":") }
      pid = Process.spawn(env, RbConfig.ruby, *command, *listen_args.call(port),
                          pgroup: true, chdir: dir, out: log, err: log, in: File::NULL)
      server = Server.new(pid:, port:, dir:, log:)
      servers << server
      wait_for_port(port, pid, log)
      server
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
