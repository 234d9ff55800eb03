# frozen_string_literal: true

# Real unicorn 6 processes, real clients reading until EOF.
RSpec.describe "unicorn with forking requests", :e2e do
  %w[forksafe plain].each do |via|
    context "when the app forks with #{via == "plain" ? "Kernel#fork" : "ForkSafe.fork"}" do
      it "gives the client EOF soon after the master kills a timed-out worker, not when the child exits" do
        server = start_unicorn(timeout: 3)
        seconds, = http_get(server.port, "/fork?via=#{via}&life=12&hang=60", limit: 15)
        expect(seconds).to be_between(2.5, 3 + 3)
      end

      it "frees the port when the server stops while an orphaned child lives" do
        server = start_unicorn
        _, response = http_get(server.port, "/fork?via=#{via}&life=8&mark=1")
        expect(response).to match(%r{\AHTTP/1\.[01] 200})
        stop_server(server)
        expect { TCPSocket.new("127.0.0.1", server.port) }.to raise_error(Errno::ECONNREFUSED)
        expect { TCPServer.new("127.0.0.1", server.port).close }.not_to raise_error
      end
    end
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

  context "without the gem (the same app proves the tests can fail)" do
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
