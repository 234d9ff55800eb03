# frozen_string_literal: true

# Real unicorn processes, real clients reading until EOF.
RSpec.describe "unicorn with forking requests", :e2e do
  def start(gem:, env: {}, config: nil, **options)
    start_unicorn(gem:, env:, config: config.to_s, **options)
  end

  it_behaves_like "a server whose app forks", graceful_stop: :QUIT, features: []

  %w[forksafe plain].each do |via|
    it "gives the client EOF soon after the master kills a timed-out worker, not when the child exits (#{via} fork)" do
      server = start_unicorn(timeout: 3)
      seconds, = http_get(server.port, "/fork?via=#{via}&life=12&hang=60", limit: 15)
      expect(seconds).to be_between(2.5, 3 + 3)
    end
  end

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

  it "keeps serving after many forking requests: the master's worker spawns keep the listener" do
    server = start_unicorn(workers: 2, timeout: 3)
    statuses = forking_statuses(server, 20)
    Process.kill(:TTOU, server.pid) # drop a worker, then respawn one: a server fork
    Process.kill(:TTIN, server.pid)
    sleep 1
    statuses += Array.new(10) { status_of(http_get(server.port, "/").last) }
    expect(statuses).to all(eq("200"))
  end

  it "installs when required from unicorn's config file and the app loads in each worker (preload_app false)" do
    server = start_unicorn(gem: false, preload: false, config: 'require "unicorn/forksafe"')
    error, hijack = %w[/fork /hijack].map { |path| http_get(server.port, "#{path}?via=native&life=6&raise=1") }
    expect([error.first, hijack.first]).to all(be < 1)
    expect([error.last, hijack.last]).to match([start_with("HTTP/1.1 500"), end_with("hijacked\n")])
  end

  it "logs each child's pass through unicorn's logger" do
    server = start_unicorn(config: 'logger Logger.new(File.expand_path("app.log"))',
                           env: { "FORKSAFE_DEBUG" => "1" })
    http_get(server.port, "/fork?via=plain&life=2")
    sleep 0.5
    log = File.read(File.join(server.dir, "app.log"))
    expect(log).to match(/forksafe: child \d+ of \d+: neutralized clients \[\d+/)
  end

  it "without the gem, leaves the client waiting for the child after a timeout kill" do
    server = start_unicorn(gem: false, timeout: 3)
    seconds, = http_get(server.port, "/fork?via=plain&life=9&hang=60", limit: 15)
    expect(seconds).to be > 8
  end
end
