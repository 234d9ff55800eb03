# frozen_string_literal: true

RSpec.describe "ForkSafe::Native.shutdown", compat: %w[ruby3.4_puma_6.6] do
  it "gives the peer EOF while another process still holds the socket" do
    _listener, outbound, accepted = tcp_connection
    child { sleep 6 }
    accepted.write("done")
    ForkSafe::Native.shutdown(accepted.fileno)
    accepted.close
    expect(outbound.read(4)).to eq("done")
    expect(seconds_to_eof(outbound, limit: 3)).to be < 1
  end

  it "is needed: a plain close leaves the peer waiting for the child" do
    _listener, outbound, accepted = tcp_connection
    child { sleep 6 }
    accepted.close
    expect(seconds_to_eof(outbound, limit: 1.5)).to be_nil
  end

  it "treats an already disconnected socket as done" do
    _listener, outbound, accepted = tcp_connection
    outbound.close
    expect(ForkSafe::Native.shutdown(accepted.fileno)).to be(true)
    expect(ForkSafe::Native.shutdown(accepted.fileno)).to be(true)
  end
end
