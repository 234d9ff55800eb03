# frozen_string_literal: true

# A Rack server the gem has no integration for: the gem knows no server
# there, and changes nothing, until ForkSafe::Rack marks a request (the
# process then serves: its forks drop the clients and the listener).
RSpec.describe "WEBrick with ForkSafe::Rack", :e2e do
  %w[forksafe plain].each do |via|
    # WEBrick shuts its listener down on a clean stop, which frees the port
    # anyway; a SIGKILL (the OOM killer, a hard deploy) does not.
    it "gives EOF at once and frees the port when the server is killed (#{via} fork)" do
      server = start_webrick
      seconds, response = http_get(server.port, "/fork?via=#{via}&life=8")
      expect(seconds).to be < 1
      expect(response).to match(%r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nforked \d+\n\z}m)
      stop_server(server, :KILL)
      expect { TCPServer.new("127.0.0.1", server.port).close }.not_to raise_error
    end
  end

  it "with the gem but no middleware, changes nothing: the client waits for the child, as without the gem" do
    server = start_webrick(middleware: false)
    seconds, = http_get(server.port, "/fork?via=plain&life=4", limit: 8)
    expect(seconds).to be > 3.5
  end

  it "without the gem, leaves the client waiting for the child" do
    server = start_webrick(gem: false, middleware: false)
    seconds, = http_get(server.port, "/fork?via=plain&life=4", limit: 8)
    expect(seconds).to be > 3.5
  end
end
