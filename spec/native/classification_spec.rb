# frozen_string_literal: true

require "tmpdir"

RSpec.describe "ForkSafe::Native.sockets classification", compat: %w[ruby3.4_puma_6.6] do
  it "tells a specific IPv4 listener, its accepted client and our outbound connection apart" do
    listener, outbound, accepted = tcp_connection("127.0.0.1")
    expect(kind_of_fd(listener)).to eq(:listener)
    expect(kind_of_fd(accepted)).to eq(:client)
    expect(kind_of_fd(outbound)).to eq(:connected)
  end

  it "matches connections accepted by an IPv4 wildcard listener" do
    _listener, outbound, accepted = tcp_connection("127.0.0.1", bind: "0.0.0.0")
    expect(kind_of_fd(accepted)).to eq(:client)
    expect(kind_of_fd(outbound)).to eq(:connected)
  end

  it "matches IPv6 and v4-mapped connections accepted by a dual-stack wildcard listener" do
    skip "this host has no IPv6 loopback" unless ipv6_loopback?
    listener = track(TCPServer.new("::", 0))
    v6 = track(TCPSocket.new("::1", listener.addr[1]))
    v6_accepted = track(listener.accept)
    v4 = track(TCPSocket.new("127.0.0.1", listener.addr[1]))
    v4_accepted = track(listener.accept)
    expect([v6_accepted, v4_accepted].map { |s| kind_of_fd(s) }).to eq(%i[client client])
    expect([v6, v4].map { |s| kind_of_fd(s) }).to eq(%i[connected connected])
  end

  it "matches a specific IPv6 listener" do
    skip "this host has no IPv6 loopback" unless ipv6_loopback?
    listener, outbound, accepted = tcp_connection("::1")
    expect(kind_of_fd(listener)).to eq(:listener)
    expect(kind_of_fd(accepted)).to eq(:client)
    expect(kind_of_fd(outbound)).to eq(:connected)
    row = ForkSafe::Native.sockets([]).find { |s| s[:fd] == accepted.fileno }
    expect(row[:local]).to eq("[::1]:#{listener.addr[1]}")
  end

  it "matches Unix connections by the listener's path" do
    Dir.mktmpdir do |dir|
      listener, outbound, accepted = unix_connection(dir)
      expect(kind_of_fd(listener)).to eq(:listener)
      expect(kind_of_fd(accepted)).to eq(:client)
      expect(kind_of_fd(outbound)).to eq(:connected)
      rows = ForkSafe::Native.sockets([])
      expect(rows.find { |s| s[:fd] == accepted.fileno }[:local]).to eq(File.join(dir, "app.sock"))
      close_tracked
    end
  end

  it "leaves socketpairs, UDP and unconnected sockets out of the clients" do
    a, b = track(*UNIXSocket.pair)
    udp = track(UDPSocket.new)
    udp.bind("127.0.0.1", 0)
    bare = track(Socket.new(:INET, :STREAM))
    expect([a, b].map { |s| kind_of_fd(s) }).to eq(%i[connected connected])
    expect(kind_of_fd(udp)).to eq(:datagram)
    expect(kind_of_fd(bare)).to eq(:unconnected)
  end

  it "lists no pipes or files, though they are open fds" do
    reader, writer = track(*IO.pipe)
    file = track(File.open(__FILE__))
    fds = [reader, writer, file].map(&:fileno)
    expect(ForkSafe::Native.open_fds).to include(*fds)
    expect(ForkSafe::Native.sockets([]).map { |s| s[:fd] }).not_to include(*fds)
  end

  it "treats a registered connection as a client even with no listener" do
    listener, outbound, accepted = tcp_connection
    listener.close
    expect(kind_of_fd(accepted)).to eq(:connected)
    expect(kind_of_fd(accepted, in_flight: [accepted])).to eq(:client)
    expect(kind_of_fd(outbound, in_flight: [accepted.fileno])).to eq(:connected)
  end

  it "reports addresses and close-on-exec as the kernel has them" do
    listener, outbound, accepted = tcp_connection
    accepted.close_on_exec = false
    rows = ForkSafe::Native.sockets([]).to_h { |s| [s[:fd], s] }
    port = listener.addr[1]
    expect(rows[listener.fileno]).to include(local: "127.0.0.1:#{port}", remote: nil, cloexec: true)
    expect(rows[accepted.fileno]).to include(local: "127.0.0.1:#{port}",
                                             remote: "127.0.0.1:#{outbound.addr[1]}", cloexec: false)
  end
end
