# frozen_string_literal: true

require "open3"

RSpec.describe "ForkSafe.fork", compat: %w[ruby3.4_puma_6.6] do
  def wait_status(pid)
    children.delete(pid)
    Process.wait2(pid).last
  end

  it "works in a process that never required socket" do
    out, status = Open3.capture2e(RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-runicorn/forksafe",
                                  "-e", "Process.wait(ForkSafe.fork { exit!(3) }); p $?.exitstatus")
    expect([out, status.success?]).to eq(["3\n", true])
  end

  it "without the fork hook (unicorn/forksafe/fork alone) says the hook is off, and will not turn it on" do
    out, status = Open3.capture2e(RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", <<~RUBY)
      require "unicorn/forksafe/fork"
      p ForkSafe.config.fork_hook
      begin
        ForkSafe.config.fork_hook = true
      rescue ArgumentError => e
        puts e.message
      end
      ForkSafe.config.fork_hook = false
      p ForkSafe.config.fork_hook
    RUBY
    expect([out.lines.map(&:chomp), status.success?])
      .to eq([["false", 'fork_hook: the hook is not installed (require "unicorn/forksafe")', "false"], true])
  end

  it "keeps a fork_hook setting made before the hook's install, and is not fooled by another ForkHook" do
    out, status = Open3.capture2e(RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", <<~RUBY)
      module ForkHook; end # another library's
      require "unicorn/forksafe/fork"
      begin
        ForkSafe.config.fork_hook = true
      rescue ArgumentError
        ForkSafe.config.fork_hook = false
      end
      require "unicorn/forksafe"
      p ForkSafe.config.fork_hook
    RUBY
    expect([out, status.success?]).to eq(["false\n", true])
  end

  it "keeps Process.fork's contract: pid in the parent, the block's exit status" do
    expect(wait_status(ForkSafe.fork { exit 3 }).exitstatus).to eq(3)
    expect(wait_status(ForkSafe.fork { $stderr.reopen(File::NULL) && raise("boom") }).exitstatus).to eq(1)
    expect(wait_status(ForkSafe.fork { nil }).exitstatus).to eq(0)
  end

  it "returns nil in a blockless child, which is made safe too" do
    _listener, outbound, accepted = tcp_connection
    reader, writer = IO.pipe
    pid = ForkSafe.fork
    if pid.nil?
      writer.write(kind_of_fd(accepted).inspect)
      sleep 6
      exit!(0)
    end
    children << pid
    writer.close
    expect(reader.readpartial(100)).to eq(":connected")
    accepted.close
    expect(seconds_to_eof(outbound, limit: 3)).to be < 1
  end

  it "ends the child's reference to client connections: the client gets EOF while the child lives" do
    _listener, outbound, accepted = tcp_connection
    children << ForkSafe.fork { sleep 6 }
    accepted.close
    expect(seconds_to_eof(outbound, limit: 3)).to be < 1
  end

  it "releases listeners by default: once the parent closes its own, the port refuses" do
    listener, = tcp_connection
    port = listener.addr[1]
    running_child(via: ForkSafe.method(:fork))
    listener.close
    expect { TCPSocket.new("127.0.0.1", port) }.to raise_error(Errno::ECONNREFUSED)
  end

  it "keeps listeners with listeners: :keep" do
    listener, = tcp_connection
    port = listener.addr[1]
    running_child(via: ->(&b) { ForkSafe.fork(listeners: :keep, &b) })
    listener.close
    expect { track(TCPSocket.new("127.0.0.1", port)) }.not_to raise_error
  end

  it "hands keep: sockets to the child, which can still talk to the client" do
    _listener, outbound, accepted = tcp_connection
    children << ForkSafe.fork(keep: [accepted]) do
      accepted.write("from the child")
      accepted.close
    end
    expect(ForkSafe.handed_off?(accepted)).to be(true)
    ForkSafe.closing(accepted) { accepted.close } # a plain close: the child's copy lives
    expect(outbound.read).to eq("from the child")
  end

  it "takes a single keep: socket as it is, without reading the client's bytes" do
    _listener, outbound, accepted = tcp_connection
    outbound.write("ping")
    outbound.close_write
    children << ForkSafe.fork(keep: accepted) do
      accepted.write("#{accepted.read} pong")
      accepted.close
    end
    ForkSafe.closing(accepted) { accepted.close }
    expect(outbound.read).to eq("ping pong")
  end

  it "starts each child with none of the parent's hand-offs" do
    _listener, _outbound, accepted = tcp_connection
    children << ForkSafe.fork(keep: [accepted]) { sleep 3 }
    expect(in_child { ForkSafe.handed_off?(accepted) }).to be(false)
    expect(ForkSafe.handed_off?(accepted)).to be(true)
  end

  it "detach: true returns the pid running the block and leaves no child to reap" do
    reader, writer = IO.pipe
    pid = ForkSafe.fork(detach: true) do
      writer.write(Process.pid.to_s)
      sleep 3
    end
    writer.close
    expect(reader.read(pid.to_s.size)).to eq(pid.to_s)
    expect { Process.wait(-1, Process::WNOHANG) }.to raise_error(Errno::ECHILD)
    Process.kill(:KILL, pid)
  end

  it "detach: true returns at once while other threads fork detached children too" do
    started = monotonic
    seconds = Array.new(4) do
      Thread.new do
        pid = ForkSafe.fork(detach: true) { sleep 3 }
        [monotonic - started, pid]
      end
    end.map(&:value)
    seconds.each { |_, pid| Process.kill(:KILL, pid) }
    expect(seconds.map(&:first)).to all(be < 1)
  end

  it "detach: true without a block returns nil in the detached child" do
    reader, writer = IO.pipe
    pid = ForkSafe.fork(detach: true)
    if pid.nil?
      writer.write("detached #{Process.pid}")
      exit!(0)
    end
    writer.close
    expect(reader.read).to eq("detached #{pid}")
    expect { Process.wait(-1, Process::WNOHANG) }.to raise_error(Errno::ECHILD)
  end

  it "detach: true returns the pid and keeps the hand-off when the app ignores SIGCHLD" do
    _listener, outbound, accepted = tcp_connection
    returned = in_child(via: ->(&block) { ForkSafe.fork(keep: accepted, &block) }) do
      trap(:CHLD, "IGNORE")
      pid = ForkSafe.fork(detach: true, keep: accepted) do
        sleep 0.5
        accepted.write("from the grandchild")
      end
      [pid.is_a?(Integer), ForkSafe.handed_off?(accepted)]
    end
    expect(returned).to eq([true, true])
    accepted.close
    expect(read_until_eof(outbound, 5).last).to eq("from the grandchild")
  end

  it "gives the child's own forks none of its ForkSafe.fork options" do
    listener, = tcp_connection
    keeping = ->(&block) { ForkSafe.fork(listeners: :keep, &block) }
    released = in_child(via: keeping) do
      ForkSafe.serving(nil)
      in_child { ForkSafe.last_pass[:listeners] }
    end
    expect(released).to eq([listener.fileno]) # not kept, as the call that made the child said
  end

  it "reports the child's own pass and counts it in the child" do
    listener, _outbound, accepted = tcp_connection
    result = in_child(via: ForkSafe.method(:fork)) { [ForkSafe.last_pass, ForkSafe.stats] }
    pass, stats = result
    expect(pass).to include(clients: [accepted.fileno], listeners: [listener.fileno], dead_end: :socket)
    expect(pass[:seconds]).to be_between(0, 1)
    expect(stats).to include(clients_neutralized: 1, listeners_released: 1)
  end

  it "works without the fork hook" do
    ForkSafe.config.fork_hook = false
    _listener, outbound, accepted = tcp_connection
    children << ForkSafe.fork { sleep 6 }
    accepted.close
    expect(seconds_to_eof(outbound, limit: 3)).to be < 1
  ensure
    ForkSafe.config.fork_hook = true
  end

  describe "bad options" do
    it "names an unknown option" do
      expect { ForkSafe.fork(kep: []) { nil } }.to raise_error(ArgumentError, /unknown keyword: :kep/)
    end

    it "names a bad listeners: or detach:" do
      expect { ForkSafe.fork(listeners: :drop) { nil } }
        .to raise_error(ArgumentError, "listeners: must be :release or :keep, got :drop")
      expect { ForkSafe.fork(detach: "yes") { nil } }
        .to raise_error(ArgumentError, 'detach: must be true or false, got "yes"')
    end

    it "names a bad keep: element, and forks nothing" do
      _listener, outbound, = tcp_connection
      outbound.close
      expect { ForkSafe.fork(keep: ["x"]) { nil } }.to raise_error(TypeError, /keep element: expected/)
      expect { ForkSafe.fork(keep: [outbound]) { nil } }.to raise_error(ArgumentError, /keep element: .* is closed/)
      expect { Process.wait(-1, Process::WNOHANG) }.to raise_error(Errno::ECHILD)
    end
  end
end
