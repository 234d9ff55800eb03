# frozen_string_literal: true

# What every server integration must show, on every version it supports
# (bin/compat runs it on each cell of the matrix), each situation with a
# twin without the gem that shows the problem. The including group defines
# start(gem:, env: {}, config: nil), the server with the fixture app, and
# passes the signal of its graceful stop and the features of the versions
# under test (Support::Versions).
RSpec.shared_examples "a server whose app forks" do |graceful_stop:, features:|
  native = "via=native" # fork(2) from C, as an extension calls it
  forks = { "ForkSafe.fork" => "via=forksafe", "Kernel#fork" => "via=plain", "fork(2) from C" => native }
  # The responses whose close a fork can hold up, and what the client reads.
  streamed = /\AHTTP.*\r\n\r\nstreamed\n\z/m
  responses = {
    "an error response" => ["/fork?%s&raise=1", %r{\AHTTP/1\.[01] 500 }],
    "a full hijack" => ["/hijack?%s", /\AHTTP.*\r\n\r\nhijacked\n\z/m],
    "a response hijack" => ["/response_hijack?%s", streamed]
  }
  responses["a Rack 3 streaming body"] = ["/stream?%s", streamed] if features.include?(:streaming_body)

  def get(server, path, query, life)
    http_get(server.port, "#{format(path, query)}&life=#{life}")
  end

  it "lets a child answer on a connection handed off with keep:" do
    server = start(gem: true)
    seconds, response = http_get(server.port, "/handoff")
    expect(response).to eq("HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nfrom the child\n")
    expect(seconds).to be_between(0.4, 3)
  end

  it "finds every hook point it protects: nothing logged as missing" do
    server = start(gem: true)
    expect(http_get(server.port, "/").last).to end_with("hello\n")
    expect(File.read(server.log)).not_to include("has no")
  end

  forks.each do |name, query|
    it "gives EOF at once on every kind of response when the app forks with #{name}" do
      server = start(gem: true)
      normal = get(server, "/fork?%s", query, 6)
      others = responses.to_h { |kind, (path, _)| [kind, get(server, path, query, 6)] }
      expect([normal, *others.values].map(&:first)).to all(be < 1)
      expect(normal.last).to match(%r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nforked \d+\n\z}m)
      others.each { |kind, (_, response)| expect(response).to match(responses[kind].last), kind }
    end
  end

  responses.each do |kind, (path, answer)|
    it "gives EOF at once on #{kind} with a fork(2) from C" do
      seconds, response = get(start(gem: true), path, native, 6)
      expect(seconds).to be < 1
      expect(response).to match(answer)
    end

    it "without the gem, keeps the client of #{kind} waiting for a child forked with fork(2) from C" do
      seconds, response = get(start(gem: false), path, native, 3)
      expect(seconds).to be > 2.5
      expect(response).to match(answer)
    end
  end

  it "without the gem, keeps the client of some response waiting for a child forked with Kernel#fork" do
    server = start(gem: false)
    seconds = ["/fork?%s", *responses.values.map(&:first)].map { |path| get(server, path, "via=plain", 3).first }
    expect(seconds.max).to be > 2.5
  end

  # A request in flight when the server begins a graceful stop, whose app
  # then forks a child that writes into every socket it inherited, and
  # answers half a second later: what the client got.
  def fork_during_graceful_stop(server, signal)
    client = Thread.new { http_get(server.port, "/fork?via=plain&wait=1&pry=1&hang=0.5&life=3", limit: 8) }
    sleep 0.5 # the request is in the app
    Process.kill(signal, server.pid)
    client.value.last
  end

  it "gives a child forked during a graceful stop no way to the client's connection" do
    response = fork_during_graceful_stop(start(gem: true), graceful_stop)
    expect(response).to match(%r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nforked \d+\n\z}m)
  end

  it "without the gem, lets a child forked during a graceful stop write into the client's connection" do
    expect(fork_during_graceful_stop(start(gem: false), graceful_stop)).to include("LEAKED")
  end

  # Two requests sent at once on one connection: puma serves the second
  # from its buffer, in the same process_client call as the first.
  def pipelined(server, first, second)
    socket = track(TCPSocket.new("127.0.0.1", server.port))
    socket.write("GET #{first} HTTP/1.1\r\nHost: localhost\r\n\r\n" \
                 "GET #{second} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    read_until_eof(socket, 2).last
  end

  # Without the gem the child holds the connection too: what came in two
  # seconds is the response.
  def orphan_request(server, query = "via=plain")
    http_get(server.port, orphan_path(query), limit: 2).last
  end

  # A request whose child outlives any stop (Stops::ORPHAN_LIFE).
  def orphan_path(query = "via=plain")
    "/fork?#{query}&life=#{Support::Stops::ORPHAN_LIFE}"
  end

  orphans = {
    "a fork in the request" => [{}, ->(server) { orphan_request(server) }],
    "a fork from the app's job thread" => [{}, ->(server) { orphan_request(server, "via=plain&thread=1") }]
  }
  if features.include?(:fiber_per_request)
    orphans["a fork in a request under fiber_per_request"] =
      [{ env: { "PUMA_FIBER_PER_REQUEST" => "1" } }, ->(server) { orphan_request(server) }]
  end
  if features.include?(:clean_thread_locals)
    orphans["a fork in a pipelined keep-alive request under clean_thread_locals"] =
      [{ config: "clean_thread_locals true" }, ->(server) { pipelined(server, "/", orphan_path) }]
  end

  orphans.each do |name, (options, request)|
    it "frees the port at a graceful stop while the orphan of #{name} lives" do
      server = start(gem: true, **options)
      expect(orphan_after_stop(server, graceful_stop) { instance_exec(server, &request) }).to eq(:port_free)
    end

    it "without the gem, leaves the orphan of #{name} holding the port" do
      server = start(gem: false, **options)
      expect(orphan_after_stop(server, graceful_stop) { instance_exec(server, &request) }).to eq(:port_held)
    end
  end
end

# Unicorn's family (unicorn, pitchfork) besides: workers forked by a master
# or a mold that kills one past its timeout and forks another, and a logger
# set in the server's config file.
RSpec.shared_examples "a preforking server" do |server_name|
  %w[forksafe plain].each do |via|
    it "gives the client EOF soon after a timed-out worker is killed, not when the child exits (#{via} fork)" do
      server = start(gem: true, timeout: 3)
      seconds, = http_get(server.port, "/fork?via=#{via}&life=12&hang=60", limit: 15)
      expect(seconds).to be_between(2.5, 3 + 3)
    end
  end

  it "without the gem, leaves the client waiting for the child after a timed-out worker is killed" do
    server = start(gem: false, timeout: 3)
    seconds, = http_get(server.port, "/fork?via=plain&life=9&hang=60", limit: 15)
    expect(seconds).to be > 8
  end

  it "keeps serving after many forking requests: the server's worker spawns keep the listener" do
    server = start(gem: true, workers: 2, timeout: 3)
    statuses = forking_statuses(server, 20)
    Process.kill(:TTOU, server.pid) # drop a worker, then respawn one: a server fork
    Process.kill(:TTIN, server.pid)
    sleep 1
    statuses += Array.new(10) { status_of(http_get(server.port, "/").last) }
    expect(statuses).to all(eq("200"))
  end

  it "logs each child's pass through #{server_name}'s logger" do
    server = start(gem: true, config: 'logger Logger.new(File.expand_path("app.log"))',
                   env: { "FORKSAFE_DEBUG" => "1" })
    http_get(server.port, "/fork?via=plain&life=2")
    sleep 0.5
    log = File.read(File.join(server.dir, "app.log"))
    expect(log).to match(/forksafe: child \d+ of \d+: neutralized clients \[\d+/)
  end
end
