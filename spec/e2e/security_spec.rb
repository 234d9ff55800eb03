# frozen_string_literal: true

require "json"

# A child of a threaded server, forked while strangers' requests are in
# flight, tries every socket it inherited: it reads, writes and accepts.
# With the gem it gets nothing of anyone's: EOF on reads, EPIPE on writes,
# EINVAL on accept, and no client receives its bytes.
RSpec.describe "what a child can do with its parent's connections", :e2e do
  # Three strangers in flight on puma's other threads, each with pipelined
  # bytes the server has not read yet, while the app forks the spy.
  def spy_among_strangers(server)
    report = File.join(server.dir, "spy.json")
    strangers = Array.new(3) { |i| stranger(server, i) }
    sleep 0.5 # the strangers are inside the app, their second requests unread
    http_get(server.port, "/spy?report=#{report}&life=4")
    poll(5, -> { "the spy wrote no report" }) { File.exist?(report) && !File.empty?(report) }
    [JSON.parse(File.read(report)), strangers.map(&:value)]
  end

  def stranger(server, index)
    socket = track(TCPSocket.new("127.0.0.1", server.port))
    socket.write("GET /slow?s=1.5 HTTP/1.1\r\nHost: x\r\nX-Secret: SECRET-HEADER-#{index}\r\n\r\n")
    Thread.new do
      sleep 0.2
      socket.write("GET /?SECRET-PIPELINED-#{index} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
      read_until_eof(socket, 8).last
    end
  end

  it "reads nothing, writes nowhere and accepts nothing on puma with four threads" do
    tried, received = spy_among_strangers(start_puma(threads: 4))
    expect(tried.size).to be >= 4 # the listener, the spy's own connection and the strangers'
    expect(tried.map { |t| t["read"] }).to all(eq("EOF"))
    expect(tried.map { |t| t["write"] }).to all(eq("Errno::EPIPE"))
    expect(tried.map { |t| t["accept"] }).to all(eq("Errno::EINVAL"))
    expect(received).to all(include("slow done").and(include("hello")))
    expect(received.join).not_to include("LEAKED")
  end

  it "without the gem, the child reads strangers' requests and writes into their connections" do
    tried, = spy_among_strangers(start_puma(threads: 4, gem: false))
    expect(tried.map { |t| t["read"] }).to include(/SECRET-PIPELINED-\d/)
    expect(tried.map { |t| t["write"] }).to include("wrote 17")
    expect(tried.map { |t| t["accept"] }).to include("would block") # the listener, alive
  end
end

# A child that closes the TLS socket objects it inherited (as a tidy child
# might) writes a close_notify alert: with its reference still live, the
# client's TLS session ends before the server's response.
RSpec.describe "a child closing its parent's TLS connections", :e2e do
  it "sends no close_notify: the client gets the whole response" do
    server = start_puma(tls: true)
    seconds, response = https_get(server.port, "/fork?via=plain&life=4&hang=0.5&tls_close=1")
    expect(seconds).to be < 2
    expect(response).to match(%r{\AHTTP/1\.0 200 OK\r\n.*\r\n\r\nforked \d+\n\z}m)
  end

  it "without the gem, ends the client's TLS session before the response" do
    server = start_puma(tls: true, gem: false)
    _, response = https_get(server.port, "/fork?via=plain&life=4&hang=0.5&tls_close=1")
    expect(response).to eq("")
  end
end
