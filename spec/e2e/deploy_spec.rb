# frozen_string_literal: true

# Deploys are the server's own forks (and execs): with the gem, each keeps
# working under load. A client sends requests throughout, each on a fresh
# connection, every fifth forking a child; none may fail, and the new
# generation serves after, with the gem still at work in it. Each server's
# examples exist only where the bundle has that server (never a skip
# reported as a pass): Debian's bundle has unicorn and puma, the pitchfork
# cells pitchfork.
RSpec.describe "deploys under load, with the gem", :e2e, compat: %w[unicorn puma pitchfork debian13] do
  include Support::Deploy
  include Support::PitchforkServer

  # The deploy's requests all answered, some of them forking; then the
  # server serves, and a forking request that fails gives its client EOF
  # at once (the gem is loaded in the processes now serving).
  def expect_served_throughout(server, requests)
    expect(failed(requests)).to eq([])
    expect(forking(requests)).to be >= 3
    expect_gem_at_work(server)
  end

  def expect_gem_at_work(server)
    expect(http_get(server.port, "/").last).to end_with("hello\n")
    seconds, response = http_get(server.port, "/fork?via=native&life=6&raise=1")
    expect(response).to match(%r{\AHTTP/1\.[01] 500 })
    expect(seconds).to be < 1
  end

  if Support::Versions.installed("unicorn")
    it "unicorn: USR2, then QUIT of the old master once the new one's workers are ready" do
      # Unicorn execs START_CTX[0], the executable, which for a gem may have
      # no usable #! line: exec Ruby with it instead, as unicorn_spec does.
      server = start_unicorn(workers: 2, config: <<~CONFIG)
        pid File.expand_path("unicorn.pid")
        Unicorn::HttpServer::START_CTX[:argv].unshift(Unicorn::HttpServer::START_CTX[0])
        Unicorn::HttpServer::START_CTX[0] = RbConfig.ruby
      CONFIG
      wait_for_log(server, /worker=\d+ ready/, 2)
      requests = under_load(server.port) do
        Process.kill(:USR2, server.pid)
        wait_for_new_pid(File.join(server.dir, "unicorn.pid"), server.pid)
        wait_for_log(server, /worker=\d+ ready/, 4)
        stop_server(server) # QUIT: the old master and its workers finish their requests and exit
      end
      expect_served_throughout(server, requests)
    end

    # The new master of an upgrade loads the app (preload_app) with the
    # listeners it inherited open: a child the app forks as it loads is the
    # app's, and lets the port go.
    [true, false].each do |gem|
      it "unicorn: #{gem ? "frees" : "without the gem, leaves"} the port after USR2 and QUIT of both masters " \
         "while a child the new master's app forked as it loaded lives" do
        server = start_unicorn(gem:, env: { "FORKSAFE_BOOT_CHILD" => "30" }, config: <<~CONFIG)
          pid File.expand_path("unicorn.pid")
          Unicorn::HttpServer::START_CTX[:argv].unshift(Unicorn::HttpServer::START_CTX[0])
          Unicorn::HttpServer::START_CTX[0] = RbConfig.ruby
        CONFIG
        wait_for_log(server, /worker=\d+ ready/, 1)
        Process.kill(:USR2, server.pid)
        upgraded = wait_for_new_pid(File.join(server.dir, "unicorn.pid"), server.pid)
        wait_for_log(server, /boot child \d+ forked/, 2) # the new master's app
        stop_server(server)
        Process.kill(:QUIT, upgraded)
        poll(20, -> { "the new master #{upgraded} did not exit" }) { !alive?(upgraded) }
        expect(port_free?(server.port)).to be(gem)
      end
    end
  end

  if Support::Versions.installed("puma")
    # Puma's restart in single mode under load, its exec's second "Use
    # Ctrl-C" awaited: the requests.
    def single_mode_restart(server)
      wait_for_log(server, /Use Ctrl-C to stop/, 1)
      under_load(server.port) do
        Process.kill(:USR2, server.pid)
        wait_for_log(server, /Use Ctrl-C to stop/, 2)
      end
    end

    # [server, requests] of a restart, made once more on a new server if
    # the first did not exec itself in time: puma may hang in its own
    # restart, and no master kills it. Seen on Debian 13 with both cores
    # busy, gem or not (4 of 160 restarts with it, 1 of 60 without): the
    # server thread waiting for a thread-pool thread parked in epoll_wait,
    # its request long answered. A deploy the gem broke fails both.
    def restarted_single_mode(retried: false)
      server = start_puma(threads: 2, env: env_kept_across_exec)
      [server, single_mode_restart(server)]
    rescue RuntimeError => e
      raise if retried || server.nil?

      warn "puma #{server.pid} did not restart (#{threads(server.pid)}): once more. #{e.message}"
      kill_group(server.pid)
      restarted_single_mode(retried: true)
    end

    it "puma single mode: USR2 hot restart (an exec of the server)" do
      expect_served_throughout(*restarted_single_mode)
    end

    # The gem is required from puma's config file, so the master has it
    # though it does not load the app: as config/puma.rb requiring it does.
    # Phased restarts need the app not preloaded (puma 6 preloads by
    # default with workers).
    cluster = "require \"unicorn/forksafe\"\npreload_app! false\n"

    it "puma cluster mode: USR2 hot restart of the master" do
      server = start_puma(threads: 2, workers: 2, config: cluster, env: env_kept_across_exec)
      wait_for_log(server, /booted/, 2)
      requests = under_load(server.port) do
        Process.kill(:USR2, server.pid)
        wait_for_log(server, /Use Ctrl-C to stop/, 2, limit: Support::Stops::WORKER_STOP) # its workers stopped first
        wait_for_log(server, /booted/, 4)
      end
      expect_served_throughout(server, requests)
    end

    it "puma cluster mode: USR1 phased restart, one worker after the other" do
      server = start_puma(threads: 2, workers: 2, config: cluster, env: env_kept_across_exec)
      wait_for_log(server, /booted/, 2)
      requests = under_load(server.port) do
        Process.kill(:USR1, server.pid)
        wait_for_log(server, /booted.*phase: 1/, 2, limit: Support::Stops::WORKER_STOP)
      end
      expect_served_throughout(server, requests)
    end
  end

  if Support::Versions.installed("pitchfork")
    it "pitchfork: a refork (worker 0 becomes the new mold, which forks the new workers)" do
      # One refork, once worker 0 has served 30 requests: the load itself
      # sets it off, so it happens while requests go on.
      server = start_pitchfork(workers: 2, config: "refork_after [30, false]")
      wait_for_log(server, /worker=\d+ gen=0 pid=\d+ ready/, 2)
      requests = under_load(server.port) do
        wait_for_log(server, /worker=\d+ gen=1 pid=\d+ ready/, 2)
        wait_for_log(server, /worker=\d+ gen=0 pid=\d+ reaped/, 2)
      end
      expect_served_throughout(server, requests)
    end
  end
end
