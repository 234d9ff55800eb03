# frozen_string_literal: true

# Real unicorn 6 processes, real clients reading until EOF.
RSpec.describe "unicorn with forking requests", :e2e do
  forks = {
    "ForkSafe.fork" => "via=forksafe",
    "Kernel#fork" => "via=plain",
    "a fork the hook does not see" => "via=plain&hook=off" # the parent's shutdown alone
  }

  # The normal, error, hijacked and response-hijacked responses of one kind
  # of fork, each while the child lives six seconds.
  def four_responses(server, query)
    %w[/fork?%s /fork?%s&raise=1 /hijack?%s /response_hijack?%s]
      .map { |path| http_get(server.port, "#{format(path, query)}&life=6") }
  end

  def expect_four_responses(responses)
    expect(responses.map(&:first)).to all(be < 1)
    normal, error, *hijacked = responses.map(&:last)
    expect(normal).to match(%r{\AHTTP/1\.1 200 OK\r\n.*\r\n\r\nforked \d+\n\z}m)
    expect(error).to eq("HTTP/1.1 500 Internal Server Error\r\n\r\n")
    expect_hijacked(*hijacked)
  end

  forks.each do |name, query|
    it "gives EOF at once on normal, error and both hijacked responses when the app forks with #{name}" do
      expect_four_responses(four_responses(start_unicorn, query))
    end
  end

  %w[forksafe plain].each do |via|
    context "when the app forks with #{via == "plain" ? "Kernel#fork" : "ForkSafe.fork"}" do
      it "gives the client EOF soon after the master kills a timed-out worker, not when the child exits" do
        server = start_unicorn(timeout: 3)
        seconds, = http_get(server.port, "/fork?via=#{via}&life=12&hang=60", limit: 15)
        expect(seconds).to be_between(2.5, 3 + 3)
      end

      it "frees the port when the server stops while an orphaned child lives" do
        server = start_unicorn
        _, response = http_get(server.port, "/fork?via=#{via}&life=8")
        expect(response).to match(%r{\AHTTP/1\.[01] 200})
        stop_server(server)
        expect { TCPSocket.new("127.0.0.1", server.port) }.to raise_error(Errno::ECONNREFUSED)
        expect { TCPServer.new("127.0.0.1", server.port).close }.not_to raise_error
      end
    end
  end

  it "lets a child answer on a connection handed off with keep:" do
    server = start_unicorn
    seconds, response = http_get(server.port, "/handoff")
    expect(response).to eq("HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nfrom the child\n")
    expect(seconds).to be_between(0.4, 3)
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
    expect_four_responses(four_responses(server, forks.fetch("a fork the hook does not see")))
  end

  it "logs each child's pass through unicorn's logger" do
    server = start_unicorn(config: 'logger Logger.new(File.expand_path("app.log"))',
                           env: { "FORKSAFE_DEBUG" => "1" })
    http_get(server.port, "/fork?via=plain&life=2")
    sleep 0.5
    log = File.read(File.join(server.dir, "app.log"))
    expect(log).to match(/forksafe: child \d+ of \d+: neutralized clients \[\d+/)
  end

  context "without the gem (the same app proves the tests can fail)" do
    it "leaves the client of an error response waiting for the child" do
      server = start_unicorn(gem: false)
      seconds, response = http_get(server.port, "/fork?via=plain&life=4&raise=1", limit: 8)
      expect(seconds).to be > 3.5
      expect(response).to start_with("HTTP/1.1 500")
    end

    it "leaves the client waiting for the child after a timeout kill" do
      server = start_unicorn(gem: false, timeout: 3)
      seconds, = http_get(server.port, "/fork?via=plain&life=9&hang=60", limit: 15)
      expect(seconds).to be > 8
    end

    it "leaves the orphan holding the port" do
      server = start_unicorn(gem: false)
      http_get(server.port, "/fork?via=plain&life=8")
      stop_server(server)
      expect { TCPServer.new("127.0.0.1", server.port).close }.to raise_error(Errno::EADDRINUSE)
    end
  end
end
