# frozen_string_literal: true

# Real Thin processes (one process, EventMachine's reactor), real clients
# reading until EOF. Thin has no hijack, so the shared contract's hijack
# and hand-off examples do not apply: its situations that do are here.
# EventMachine shuts every connection down before it closes it, so the
# client's EOF never waited for a child, gem or not; what the gem changes
# is what the child holds: the listener, and connections it can write into.
RSpec.describe "Thin with forking requests", :e2e, compat: %w[thin] do
  forks = { "ForkSafe.fork" => "via=forksafe", "Kernel#fork" => "via=plain", "fork(2) from C" => "via=native" }
  answers = { "" => %r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nforked (\d+)\n\z}m,
              "&raise=1" => %r{\AHTTP/1\.[01] 500 }m }
  # A fork whose child writes into every socket it inherited; the parent
  # answers half a second later (EventMachine's shutdown would stop a
  # child's write that came after).
  prying = "/fork?via=plain&pry=1&hang=0.5&life=6"

  it "finds every hook point it protects: nothing logged as missing" do
    server = start_thin
    expect(http_get(server.port, "/").last).to end_with("hello\n")
    expect(File.read(server.log)).not_to include("has no")
  end

  it "installs when the gem is loaded before Thin (Thin's classes load later, by autoload)" do
    server = start_thin(gem: false, env: { "RUBYOPT" => "-runicorn/forksafe" })
    expect(orphan_after_stop(server, :TERM) { http_get(server.port, "/fork?via=plain&life=8").last }).to eq(:port_free)
    expect(File.read(server.log)).not_to include("has no")
  end

  forks.each do |name, query|
    it "gives EOF at once on a response and an error response while the child of #{name} lives" do
      server = start_thin
      got = answers.keys.map { |more| http_get(server.port, "/fork?#{query}&life=6#{more}") }
      expect(got.map(&:first)).to all(be < 1)
      expect(got.map(&:last)).to match(answers.values.map { |answer| match(answer) })
      child = Integer(got.first.last[answers[""], 1])
      expect(Process.kill(0, child)).to eq(1) # alive, yet the client has its EOF
    end
  end

  it "without the gem, gives EOF at once too: EventMachine shuts the connection down" do
    seconds, response = http_get(start_thin(gem: false).port, "/fork?via=native&life=6")
    expect(seconds).to be < 1
    expect(response).to match(answers[""])
  end

  it "gives a child no way to write into its request's connection" do
    _, response = http_get(start_thin.port, prying)
    expect(response).to match(answers[""])
  end

  it "without the gem, lets the child write into its request's connection" do
    _, response = http_get(start_thin(gem: false).port, prying)
    expect(response).to start_with("LEAKED-FROM-CHILD")
  end

  # A slow client that has sent half its request: the reactor has accepted
  # it and holds it while the block runs. Its [seconds, response] once it
  # sends the rest, and what the block returned.
  def slow_neighbour(server)
    neighbour = track(TCPSocket.new("127.0.0.1", server.port))
    neighbour.write("GET / HTTP/1.0\r\n")
    sleep 0.3 # accepted, its first line read
    returned = yield
    neighbour.write("Host: localhost\r\n\r\n")
    [read_until_eof(neighbour, 15), returned]
  end

  it "gives a child no way into a slow neighbour's connection" do
    server = start_thin
    (seconds, response), = slow_neighbour(server) { http_get(server.port, prying) }
    expect(seconds).to be < 1
    expect(response).to match(%r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nhello\n\z}m)
  end

  it "without the gem, lets a child write into a slow neighbour's connection" do
    server = start_thin(gem: false)
    (_, response), = slow_neighbour(server) { http_get(server.port, prying) }
    expect(response).to start_with("LEAKED-FROM-CHILD")
  end

  it "threaded, gives a neighbour in the app no bytes of a child's" do
    server = start_thin(threaded: true)
    (neighbour_seconds, neighbour), (forker_seconds, forker) =
      neighbour_and_forker(server.port, "/fork?via=plain&pry=1&life=6")
    expect([neighbour_seconds, forker_seconds]).to all(be < 2.5)
    expect(neighbour).to match(%r{\AHTTP/1\.[01] 200}).and end_with("slow done\n")
    expect(forker).to match(answers[""])
  end

  it "threaded, without the gem, lets a child write into a neighbour in the app" do
    server = start_thin(gem: false, threaded: true)
    (_, neighbour), = neighbour_and_forker(server.port, "/fork?via=plain&pry=1&life=6")
    expect(neighbour).to start_with("LEAKED-FROM-CHILD")
  end

  # Threaded: a request in the app and a slow neighbour half-sent when the
  # graceful stop begins. Thin closes its listener (signals are handled on
  # a one-second timer) and waits for both; then the app forks, its child
  # writing into every socket it inherited, and the neighbour sends the
  # rest. What each client got.
  def fork_after_listener_closed(server)
    forker = Thread.new { http_get(server.port, "/fork?via=plain&wait=3&pry=1&hang=0.5&life=6", limit: 10) }
    slow_neighbour(server) do
      sleep 0.2 # the forking request is in the app
      Process.kill(:TERM, server.pid)
      poll(2.4, -> { "Thin's listener still open 2.4 s after TERM" }) { refused?(server) }
      forker.value
    end.map(&:last)
  end

  def refused?(server)
    TCPSocket.new("127.0.0.1", server.port).close
    false
  rescue Errno::ECONNREFUSED
    true
  end

  it "gives a child forked once the listener is closed no way to its connection or a neighbour's" do
    neighbour, forker = fork_after_listener_closed(start_thin(threaded: true))
    expect(forker).to match(answers[""])
    expect(neighbour).to match(%r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nhello\n\z}m)
  end

  it "without the gem, lets a child forked once the listener is closed write into both connections" do
    neighbour, forker = fork_after_listener_closed(start_thin(gem: false, threaded: true))
    expect([neighbour, forker]).to all(start_with("LEAKED-FROM-CHILD"))
  end

  orphans = { "a fork in the request" => "via=plain", "a fork(2) from C in the request" => "via=native",
              "a fork from the app's job thread" => "via=plain&thread=1" }
  orphans.each do |name, query|
    it "frees the port at a graceful stop while the orphan of #{name} lives" do
      server = start_thin
      port = orphan_after_stop(server, :TERM) { http_get(server.port, "/fork?#{query}&life=8").last }
      expect(port).to eq(:port_free)
    end

    it "without the gem, leaves the orphan of #{name} holding the port" do
      server = start_thin(gem: false)
      life = Support::Stops::ORPHAN_LIFE
      port = orphan_after_stop(server, :TERM) { http_get(server.port, "/fork?#{query}&life=#{life}").last }
      expect(port).to eq(:port_held)
    end
  end
end
