# frozen_string_literal: true

# Real puma processes, real clients reading until EOF.
RSpec.describe "puma with forking requests", :e2e, compat: %w[puma debian13 ruby3.4] do
  def start(gem:, env: {}, config: nil)
    start_puma(gem:, env:, config:)
  end

  it_behaves_like "a server whose app forks", graceful_stop: :TERM, features: Support::Versions.puma_features

  # The neighbour's and the forker's [seconds, response], the forked child
  # living `life` seconds and writing into every inherited socket.
  def neighbour_and_prying_forker(server, via, life: 6)
    neighbour_and_forker(server.port, "/fork?via=#{via}&life=#{life}&pry=1")
  end

  %w[forksafe plain].each do |via|
    it "gives an in-flight neighbour its EOF right after its response (#{via} fork)" do
      server = start_puma(threads: 2)
      (neighbour_seconds, neighbour_response), (forker_seconds, forker_response) =
        neighbour_and_prying_forker(server, via)
      expect(neighbour_seconds).to be < 2.5
      expect(neighbour_response).to match(%r{\AHTTP/1\.[01] 200}).and end_with("slow done\n")
      expect(forker_seconds).to be < 1
      expect(forker_response).to match(%r{\AHTTP/1\.[01] 200}).and include("forked")
      expect(neighbour_response + forker_response).not_to include("LEAKED")
    end
  end

  it "keeps a persistent HTTP/1.1 connection across requests, forking ones included" do
    server = start_puma
    socket = track(TCPSocket.new("127.0.0.1", server.port))
    paths = ["/", "/fork?via=native&life=6", "/fork?via=plain&life=6", "/"]
    responses = paths.map { |path| keep_alive_get(socket, path) }
    expect(responses.map { |response| response[0, 15] }).to all(eq("HTTP/1.1 200 OK"))
    expect(responses.last).to end_with("hello\n")
    expect(socket.wait_readable(0.2)).to be_nil # still open, nothing more to read
  end

  it "keeps serving in cluster mode after many forking requests: worker spawns keep the listener" do
    server = start_puma(threads: 2, workers: 2)
    statuses = forking_statuses(server, 20)
    expect(statuses).to all(eq("200"))
  end

  it "keeps serving after fork_worker reforks: worker 0's forks keep the listener" do
    server = start_puma(threads: 2, workers: 2, options: ["--fork-worker"])
    booted = wait_for_log(server, /booted/, 2)
    Process.kill(:URG, server.pid) # refork: worker 0 forks worker 1 anew
    wait_for_log(server, /booted/, booted + 1, limit: Support::Stops::WORKER_STOP) # worker 1 stopped first
    expect(forking_statuses(server, 10)).to all(eq("200"))
    seconds, response = http_get(server.port, "/fork?via=plain&life=6&raise=1")
    expect(seconds).to be < 1
    expect(response).to match(%r{\AHTTP/1\.[01] 500 })
  end

  it "installs when the gem is loaded before puma (puma's classes load later, some by autoload)" do
    server = start_puma(gem: false, env: { "RUBYOPT" => "-runicorn/forksafe" })
    error, hijack = %w[/fork /hijack].map { |path| http_get(server.port, "#{path}?via=native&life=6&raise=1") }
    expect([error.first, hijack.first]).to all(be < 1)
    expect([error.last, hijack.last]).to match([match(%r{\AHTTP/1\.[01] 500 }), end_with("hijacked\n")])
    expect(File.read(server.log)).not_to include("has no")
  end

  it "keeps serving in cluster mode with a control app when the gem is loaded before puma" do
    control = ["--control-url", "tcp://127.0.0.1:#{free_port}", "--control-token", "secret"]
    server = start_puma(gem: false, workers: 2, env: { "RUBYOPT" => "-runicorn/forksafe" }, options: control)
    expect(forking_statuses(server, 6)).to all(eq("200"))
    expect(File.read(server.log)).not_to include("has no")
  end

  it "without the gem, the neighbour waits for the child or gets its bytes" do
    server = start_puma(gem: false, threads: 2)
    (neighbour_seconds, neighbour_response), (forker_seconds,) = neighbour_and_prying_forker(server, "plain", life: 4)
    expect(forker_seconds).to be > 3.5
    expect(neighbour_seconds > 3.5 || neighbour_response.include?("LEAKED")).to be(true)
  end

  # Puma with a Solid-Queue-style plugin (spec/fixtures/plugins): once puma
  # has booted, the master forks a job supervisor that outlives puma's stop.
  # The master loads the app, and the gem with it: puma 6 and later preload
  # in cluster mode by default, 5.6 only with preload_app!.
  def start_with_supervisor(gem:, workers:)
    plugins = File.expand_path("../fixtures/plugins", __dir__)
    start_puma(gem:, workers:, config: <<~CONFIG)
      preload_app!
      $LOAD_PATH.unshift(#{plugins.dump})
      plugin :job_supervisor
    CONFIG
  end

  # The supervisor's own line in the log: it has been forked.
  def supervisor_forked(server)
    wait_for_log(server, /job supervisor \d+ forked/, 1)
    File.readlines(server.log).grep(/job supervisor/).first
  end

  { "single mode" => 0, "cluster mode (-w 2)" => 2 }.each do |mode, workers|
    it "frees the port at a graceful stop while a plugin's job supervisor forked after boot lives (#{mode})" do
      server = start_with_supervisor(gem: true, workers:)
      supervisor = supervisor_forked(server)
      expect(http_get(server.port, "/").last).to end_with("hello\n") # puma kept its listener
      expect(orphan_after_stop(server, :TERM) { supervisor }).to eq(:port_free)
    end

    it "without the gem, leaves a plugin's job supervisor forked after boot holding the port (#{mode})" do
      server = start_with_supervisor(gem: false, workers:)
      expect(orphan_after_stop(server, :TERM) { supervisor_forked(server) }).to eq(:port_held)
    end
  end

  # A child forked by a hook of the app's in puma's cluster: in the master
  # before it forks its workers (before_fork, after puma bound), or in a
  # worker as it boots, before it serves (before_worker_boot, named
  # on_worker_boot before puma 7). The gem comes with the preloaded app.
  def start_with_hook_child(gem:, hook:)
    start_puma(gem:, workers: 2, config: <<~CONFIG)
      preload_app!
      hook = #{hook.dump}
      hook = :on_worker_boot if hook == "before_worker_boot" && !respond_to?(:before_worker_boot)
      send(hook) do
        next if $hook_child
        $hook_child = fork do
          $stderr.syswrite("hook child \#{Process.pid} forked by \#{Process.ppid}\n")
          sleep 40
          exit!(0)
        end
      end
    CONFIG
  end

  def hook_child_forked(server)
    wait_for_log(server, /hook child \d+ forked/, 1)
    File.readlines(server.log).grep(/hook child/).first
  end

  %w[before_fork before_worker_boot].each do |hook|
    it "frees the port at a graceful stop while a child forked in #{hook} lives" do
      server = start_with_hook_child(gem: true, hook:)
      child = hook_child_forked(server)
      expect(http_get(server.port, "/").last).to end_with("hello\n") # the workers kept the listener
      expect(orphan_after_stop(server, :TERM) { child }).to eq(:port_free)
    end

    it "without the gem, leaves a child forked in #{hook} holding the port" do
      server = start_with_hook_child(gem: false, hook:)
      expect(orphan_after_stop(server, :TERM) { hook_child_forked(server) }).to eq(:port_held)
    end
  end

  # A client that has sent half its headers: puma accepted it and parked
  # it in the reactor, which leaves both threads free.
  def parked_slow_client(server)
    track(TCPSocket.new("127.0.0.1", server.port)).tap do |slow|
      slow.write("GET / HTTP/1.1\r\nHost: loc")
      sleep 0.5
    end
  end

  # A graceful stop with a client still sending its headers. At TERM puma
  # hands the reactor's connections to the thread pool and its binder
  # closes the listeners, so no listening socket's address explains the
  # slow client's any more. A request still running then forks a child that
  # writes into every socket it inherited. What the slow client reads once
  # it has finished its headers.
  def slow_client_at_graceful_stop(server)
    slow = parked_slow_client(server)
    running = [Thread.new { http_get(server.port, "/slow?s=5") },
               Thread.new { http_get(server.port, "/fork?via=plain&pry=1&wait=2&life=6") }]
    sleep 0.5 # both threads are in the app
    Process.kill(:TERM, server.pid)
    sleep 3 # the fork came 1.5 s after TERM, and its child has written
    slow.write("alhost\r\nConnection: close\r\n\r\n")
    read_until_eof(slow, 10).last
  ensure
    running&.each(&:join)
  end

  it "gives a child forked during a graceful stop no way to a slow client parked in the reactor" do
    response = slow_client_at_graceful_stop(start_puma(threads: 2))
    expect(response).not_to include("LEAKED")
    expect(response).to match(%r{\AHTTP/1\.1 200 OK\r\n.*\r\n\r\nhello\n\z}m)
  end

  it "without the gem, lets a child forked during a graceful stop write to a slow client parked in the reactor" do
    expect(slow_client_at_graceful_stop(start_puma(gem: false, threads: 2))).to include("LEAKED-FROM-CHILD")
  end
end
