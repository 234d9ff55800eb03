# frozen_string_literal: true

RSpec.describe "ForkSafe::Native.neutralize", compat: %w[ruby3.4_puma_6.6] do
  # The situation of every bug this gem fixes: a child holds a reference to
  # the accepted socket, and the parent closes its own.
  def child_holding(accepted, neutralize:)
    pid = child do
      ForkSafe::Native.neutralize(accepted.fileno) if neutralize
      sleep 6
    end
    accepted.close
    pid
  end

  it "lets the peer see EOF as soon as the parent closes, while the child lives on" do
    _listener, outbound, accepted = tcp_connection
    child_holding(accepted, neutralize: true)
    expect(seconds_to_eof(outbound, limit: 3)).to be < 1
  end

  it "is needed: without it the child keeps the connection open" do
    _listener, outbound, accepted = tcp_connection
    child_holding(accepted, neutralize: false)
    expect(seconds_to_eof(outbound, limit: 1.5)).to be_nil
  end

  it "keeps the fd number and close-on-exec; the child reads EOF and writes EPIPE" do
    _listener, outbound, accepted = tcp_connection
    outbound.write("a stranger's request")
    accepted.close_on_exec = false
    result = in_child do
      fd = accepted.fileno
      ForkSafe::Native.neutralize(accepted.fileno)
      io = IO.for_fd(fd, autoclose: false)
      begin
        io.syswrite("forged")
        wrote = :wrote
      rescue Errno::EPIPE
        wrote = :epipe
      end
      { fd_open: ForkSafe::Native.open_fds.include?(fd), cloexec: io.close_on_exec?,
        read: io.read_nonblock(100, exception: false), wrote: }
    end
    expect(result).to eq(fd_open: true, cloexec: false, read: nil, wrote: :epipe)
    expect(accepted.readpartial(100)).to eq("a stranger's request")
    accepted.write("real response")
    accepted.close
    expect(outbound.read).to eq("real response")
  end

  it "keeps close-on-exec set when it was set" do
    _listener, _outbound, accepted = tcp_connection
    expect(in_child do
      ForkSafe::Native.neutralize(accepted.fileno)
      accepted.close_on_exec?
    end).to be(true)
  end

  it "makes a neutralized listener refuse to accept" do
    listener, = tcp_connection
    result = in_child do
      ForkSafe::Native.neutralize(listener.fileno)
      listener.accept_nonblock
    rescue SystemCallError, IOError => e
      e.class
    end
    expect(result).to eq(Errno::EINVAL)
  end
end
