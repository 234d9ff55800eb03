# frozen_string_literal: true

# Real unicorn processes, real clients reading until EOF.
RSpec.describe "unicorn with forking requests", :e2e, compat: %w[unicorn debian13] do
  def start(gem:, env: {}, config: nil, **options)
    start_unicorn(gem:, env:, config: config.to_s, **options)
  end

  it_behaves_like "a server whose app forks", graceful_stop: :QUIT, features: []
  it_behaves_like "a preforking server", "unicorn"

  it "frees the port at a graceful stop while an orphan lives, with workers exec'd anew (worker_exec)" do
    # Unicorn execs START_CTX[0]; a gem's own bin file has no usable #! line.
    server = start_unicorn(config: <<~CONFIG)
      worker_exec true
      Unicorn::HttpServer::START_CTX[:argv].unshift(Unicorn::HttpServer::START_CTX[0])
      Unicorn::HttpServer::START_CTX[0] = RbConfig.ruby
    CONFIG
    expect(http_get(server.port, "/fork?via=plain&life=8", limit: 2).last).to include("forked")
    stop_server(server)
    expect { TCPServer.new("127.0.0.1", server.port).close }.not_to raise_error
  end

  it "installs when required from unicorn's config file and the app loads in each worker (preload_app false)" do
    server = start_unicorn(gem: false, preload: false, config: 'require "unicorn/forksafe"')
    error, hijack = %w[/fork /hijack].map { |path| http_get(server.port, "#{path}?via=native&life=6&raise=1") }
    expect([error.first, hijack.first]).to all(be < 1)
    expect([error.last, hijack.last]).to match([start_with("HTTP/1.1 500"), end_with("hijacked\n")])
  end

  # A sidecar daemon started from before_fork, which unicorn's master runs
  # after binding its listeners, before each worker's fork: forked once,
  # guarded, it holds a copy of every descriptor of the master.
  def sidecar_config
    <<~'CONFIG'
      before_fork do |_server, _worker|
        $sidecar ||= fork do
          $stderr.syswrite("sidecar #{Process.pid} forked by #{Process.ppid}\n") # where unicorn logs
          sleep 60
          exit!(0)
        end
      end
    CONFIG
  end

  # The sidecar's own line in the log: it has been forked.
  def sidecar_forked(server)
    wait_for_log(server, /sidecar \d+ forked/, 1)
    File.readlines(server.log).grep(/sidecar/).first
  end

  it "frees the port at a graceful stop while a sidecar started from before_fork lives" do
    server = start_unicorn(workers: 2, config: sidecar_config)
    sidecar = sidecar_forked(server)
    expect(http_get(server.port, "/").last).to end_with("hello\n") # the workers kept the listener
    expect(orphan_after_stop(server, :QUIT) { sidecar }).to eq(:port_free)
  end

  it "without the gem, leaves a sidecar started from before_fork holding the port" do
    server = start_unicorn(gem: false, workers: 2, config: sidecar_config)
    expect(orphan_after_stop(server, :QUIT) { sidecar_forked(server) }).to eq(:port_held)
  end

  # The app's own fork as it loads, in a worker (preload_app false), where
  # unicorn's listeners are open already.
  def boot_child(server)
    wait_for_log(server, /boot child \d+ forked/, 1)
    File.readlines(server.log).grep(/boot child/).first
  end

  [true, false].each do |gem|
    it "#{gem ? "frees" : "without the gem, leaves"} the port at a graceful stop while a child the app forked " \
       "as a worker loaded it lives (preload_app false)" do
      server = start_unicorn(gem:, preload: false, env: { "FORKSAFE_BOOT_CHILD" => "20" })
      expect(http_get(server.port, "/").last).to end_with("hello\n") # the worker has loaded the app
      expect(orphan_after_stop(server, :QUIT) { boot_child(server) }).to eq(gem ? :port_free : :port_held)
    end

    # A port of each worker's own, bound in after_fork (as unicorn's
    # documentation shows): the server's too.
    it "#{gem ? "frees" : "without the gem, leaves"} a worker's own port (after_fork's listen) at a graceful stop " \
       "while the orphan of a request on it lives" do
      own = free_port
      server = start_unicorn(gem:, config: "after_fork { |server, _| server.listen('127.0.0.1:#{own}') }")
      wait_for_log(server, /listening on addr=127.0.0.1:#{own}/, 1)
      orphan = http_get(own, "/fork?via=plain&life=20", limit: 2).last
      expect(orphan_after_stop(server, :QUIT) { orphan }).to eq(gem ? :port_free : :port_held) # the master's
      expect(port_free?(own)).to be(gem)
    end
  end
end
