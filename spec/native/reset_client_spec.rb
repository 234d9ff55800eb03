# frozen_string_literal: true

# A client whose connection the peer reset has no peer any more: the kernel
# leaves the TCP socket in TCP_CLOSE and answers getpeername with ENOTCONN.
# It was still accepted by one of our listeners, and a forked child drops it
# like any other client. Sockets only bound to a listener's address, never
# connected, are not clients, and stay usable in the child.
RSpec.describe "A client reset by its peer", compat: %w[ruby3.4_puma_6.6] do
  def reset_by_peer(outbound, accepted)
    outbound.setsockopt(Socket::Option.linger(true, 0))
    outbound.close
    wait_for_no_peer(accepted)
  end

  def wait_for_no_peer(accepted)
    poll(5, -> { "#{accepted.inspect} still has a peer" }) do
      accepted.getpeername
      false
    rescue Errno::ENOTCONN
      true
    end
  end

  def reuseport_socket(address)
    socket = track(Socket.new(address.afamily, :STREAM))
    socket.setsockopt(:SOCKET, :REUSEPORT, true)
    socket.bind(address)
    socket
  end

  it "is still classified a client, and a forked child drops it" do
    listener, outbound, accepted = tcp_connection
    reset_by_peer(outbound, accepted)
    expect(kind_of_fd(accepted)).to eq(:client)
    report = in_child do
      r = ForkSafe::Native.child_pass([], false, [])
      r.merge(read: accepted.read_nonblock(1, exception: false))
    end
    expect(report).to include(clients: [accepted.fileno], failed: {}, read: nil)
    expect(kind_of_fd(listener)).to eq(:listener)
  end

  it "is a client when the peer closed and our reply drew the reset" do
    _listener, outbound, accepted = tcp_connection("127.0.0.1", bind: "0.0.0.0")
    outbound.close
    expect(kind_of_fd(accepted)).to eq(:client) # a FIN leaves the peer known
    accepted.write("HTTP/1.1 200 OK\r\n\r\n")
    wait_for_no_peer(accepted)
    expect(kind_of_fd(accepted)).to eq(:client)
    expect(in_child { ForkSafe::Native.child_pass([], false, []) }[:clients]).to eq([accepted.fileno])
  end

  it "is a client over IPv6 and v4-mapped too" do
    skip "this host has no IPv6 loopback" unless ipv6_loopback?
    _listener, v6, v6_accepted = tcp_connection("::1")
    _wildcard, v4, v4_accepted = tcp_connection("127.0.0.1", bind: "::")
    reset_by_peer(v6, v6_accepted)
    reset_by_peer(v4, v4_accepted)
    expect([v6_accepted, v4_accepted].map { |s| kind_of_fd(s) }).to eq(%i[client client])
  end

  it "is not confused with a socket bound to the listener's address with SO_REUSEPORT, not yet listening" do
    listener = reuseport_socket(Addrinfo.tcp("127.0.0.1", 0))
    listener.listen(8)
    address = listener.local_address
    pending_listener = reuseport_socket(address)
    expect(kind_of_fd(pending_listener)).to eq(:unconnected)
    report = in_child do
      r = ForkSafe::Native.child_pass([], false, [])
      pending_listener.listen(8)
      r.merge(listening: pending_listener.getsockopt(:SOCKET, :ACCEPTCONN).bool)
    end
    expect(report).to include(clients: [], listening: true)
  end

  it "is not confused with sockets bound under a wildcard listener, not yet listening" do
    wildcard = reuseport_socket(Addrinfo.tcp("0.0.0.0", 0))
    wildcard.listen(8)
    port = wildcard.local_address.ip_port
    bound = [reuseport_socket(Addrinfo.tcp("0.0.0.0", port)), reuseport_socket(Addrinfo.tcp("127.0.0.1", port))]
    expect(bound.map { |s| kind_of_fd(s) }).to eq(%i[unconnected unconnected])
    expect(in_child { ForkSafe::Native.child_pass([], false, []) }[:clients]).to eq([])
  end
end
