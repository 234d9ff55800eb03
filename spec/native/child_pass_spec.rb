# frozen_string_literal: true

require "tmpdir"

RSpec.describe "ForkSafe::Native.child_pass", compat: %w[ruby3.4_puma_6.6] do
  it "neutralizes accepted clients and keeps listeners for a server's own fork" do
    listener, outbound, accepted = tcp_connection
    report = in_child { ForkSafe::Native.child_pass([], false, []) }
    expect(report).to include(clients: [accepted.fileno], listeners: [], kept: [],
                              dead_end: :socket, failed: {})
    expect(report[:clients]).not_to include(outbound.fileno, listener.fileno)
  end

  it "releases listeners, TCP and Unix, for app code" do
    Dir.mktmpdir do |dir|
      tcp, = tcp_connection
      unix, = unix_connection(dir)
      report = in_child do
        r = ForkSafe::Native.child_pass([], true, [])
        r.merge(kinds: [tcp, unix].map { |l| kind_of_fd(l) })
      end
      expect(report[:listeners]).to contain_exactly(tcp.fileno, unix.fileno)
      expect(report[:kinds]).to eq(%i[connected connected])
      close_tracked
    end
  end

  it "frees the port: after the parent closes its listener, connecting is refused" do
    listener, = tcp_connection
    port = listener.addr[1]
    child do
      ForkSafe::Native.child_pass([], true, [])
      sleep 6
    end
    sleep 0.2
    listener.close
    expect { TCPSocket.new("127.0.0.1", port) }.to raise_error(Errno::ECONNREFUSED)
  end

  it "leaves kept sockets working in the child" do
    _listener, outbound, accepted = tcp_connection
    result = in_child do
      report = ForkSafe::Native.child_pass([accepted.fileno], true, [])
      accepted.write("from the child")
      report
    end
    expect(result).to include(clients: [], kept: [accepted.fileno])
    expect(outbound.readpartial(100)).to eq("from the child")
  end

  it "neutralizes registered sockets that no listener explains" do
    listener, _outbound, accepted = tcp_connection
    listener.close
    expect(in_child { ForkSafe::Native.child_pass([], true, [accepted.fileno]) }[:clients])
      .to eq([accepted.fileno])
  end

  it "leaves outbound connections, pipes, files and stdio working" do
    server, = tcp_connection
    database = track(TCPSocket.new("127.0.0.1", server.addr[1]))
    database_side = track(server.accept)
    reader, writer = track(*IO.pipe)
    Dir.mktmpdir do |dir|
      log = File.open(File.join(dir, "log"), "w")
      in_child do
        ForkSafe::Native.child_pass([], true, [])
        database.write("SELECT 1")
        writer.write("pipe ok")
        log.write("log ok")
        log.flush
        $stderr.write("")
      end
      log.close
      expect(File.read(File.join(dir, "log"))).to eq("log ok")
    end
    expect(database_side.readpartial(100)).to eq("SELECT 1")
    writer.close
    expect(reader.read).to eq("pipe ok")
  end

  it "reports nothing and makes no dead end when there is nothing to do" do
    report = in_child { ForkSafe::Native.child_pass([], false, []) }
    expect(report.except(:seconds)).to eq(clients: [], listeners: [], kept: [], dead_end: nil, failed: {})
    expect(report[:seconds]).to be_a(Float).and be_between(0, 1)
  end
end
