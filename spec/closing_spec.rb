# frozen_string_literal: true

# The parent's half: a server's close of a client connection. The children
# here fork without the hook, as a C extension's fork(2) would: only the
# parent's shutdown can give the client its EOF.
RSpec.describe "closing a client connection", :without_hook do
  # A stand-in for a TLS socket: its close writes through the raw socket
  # (close_notify) and then closes it.
  def tls_like(raw)
    tls = Object.new
    tls.define_singleton_method(:to_io) { raw }
    tls.define_singleton_method(:close) do
      raw.write("close_notify")
      raw.close
    end
    tls
  end

  it "gives the peer EOF at once while a child still holds the socket" do
    _listener, outbound, accepted = tcp_connection
    child { sleep 6 }
    accepted.write("response")
    ForkSafe.closing(accepted) { accepted.close }
    seconds, received = read_until_eof(outbound, 3)
    expect(seconds).to be < 1
    expect(received).to eq("response")
  end

  it "shuts down a TLS socket's raw connection after the TLS close wrote through it" do
    _listener, outbound, accepted = tcp_connection
    child { sleep 6 }
    tls = tls_like(accepted)
    ForkSafe.closing(tls) { tls.close }
    seconds, received = read_until_eof(outbound, 3)
    expect(seconds).to be < 1
    expect(received).to eq("close_notify")
    expect(accepted).to be_closed
  end

  it "closes a socket handed off with keep: plainly" do
    _listener, outbound, accepted = tcp_connection
    children << ForkSafe.fork(keep: [accepted]) do
      sleep 0.5 # after the parent's close
      accepted.write("from the child")
    end
    ForkSafe.closing(accepted) { accepted.close }
    expect(read_until_eof(outbound, 5).last).to eq("from the child")
  end

  it "does nothing but the close for a socket already closed" do
    _listener, _outbound, accepted = tcp_connection
    accepted.close
    expect { ForkSafe.closing(accepted) { accepted.close } }.not_to raise_error
  end

  describe ForkSafe::ClientSocket do
    it "makes close end the connection, for a socket that got it by extend" do
      _listener, outbound, accepted = tcp_connection
      accepted.extend(described_class)
      child { sleep 6 }
      accepted.close
      expect(seconds_to_eof(outbound, limit: 3)).to be < 1
    end

    it "closes plainly in a child handed a listener or an outbound connection: the parent's go on" do
      listener, outbound, accepted = tcp_connection
      in_child(via: ->(&block) { ForkSafe.fork(keep: [listener, outbound], &block) }) do
        listener.close
        outbound.close
      end
      outbound.write("still connected")
      expect(accepted.readpartial(100)).to eq("still connected")
      track(TCPSocket.new("127.0.0.1", listener.addr[1]))
      expect(listener.wait_readable(3)).to eq(listener) # still listening: a new connection waits to be accepted
    end

    it "skips the server's own shutdown of a handed-off socket" do
      _listener, outbound, accepted = tcp_connection
      accepted.extend(described_class)
      children << ForkSafe.fork(keep: [accepted]) do
        sleep 0.5
        accepted.write("from the child")
      end
      accepted.shutdown
      accepted.close
      expect(read_until_eof(outbound, 5).last).to eq("from the child")
    end
  end
end
