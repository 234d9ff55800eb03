# frozen_string_literal: true

require "tempfile"

RSpec.describe "the Process._fork hook", compat: %w[ruby3.4_puma_6.6] do
  def port_refused?(port)
    track(TCPSocket.new("127.0.0.1", port))
    false
  rescue Errno::ECONNREFUSED
    true
  end

  it "makes a plain fork end its reference to client connections" do
    _listener, outbound, accepted = tcp_connection
    running_child
    accepted.close
    expect(seconds_to_eof(outbound, limit: 3)).to be < 1
  end

  it "is what fixes it: with the hook off, the client waits for the child" do
    ForkSafe.config.fork_hook = false
    _listener, outbound, accepted = tcp_connection
    running_child
    accepted.close
    expect(seconds_to_eof(outbound, limit: 1.5)).to be_nil
  ensure
    ForkSafe.config.fork_hook = true
  end

  it "covers IO.popen(\"-\") children" do
    _listener, outbound, accepted = tcp_connection
    io = IO.popen("-", "r+")
    if io.nil?
      $stdout.write(kind_of_fd(accepted).inspect)
      $stdout.close
      sleep 6
      exit!(0)
    end
    children << io.pid
    expect(io.read).to eq(":connected")
    accepted.close
    expect(seconds_to_eof(outbound, limit: 3)).to be < 1
    io.close
  end

  # Forks a running child with the block, closes the parent's listener, and
  # tells whether the port now refuses connections (the child let it go).
  def port_refused_after_child
    listener, = tcp_connection
    port = listener.addr[1]
    yield
    listener.close
    port_refused?(port)
  end

  it "releases listeners in a fork nobody marked where a server serves" do
    expect(port_refused_after_child { running_child }).to be(true)
  end

  it "keeps listeners in the server's own forks, even inside a request" do
    expect(port_refused_after_child { ForkSafe.request { ForkSafe.server_fork { running_child } } }).to be(false)
  end

  it "releases listeners in every fork but the server's own where a server serves, from any thread or fiber" do
    released = in_child do
      ForkSafe.serving(Logger.new(File::NULL))
      listener, = tcp_connection # this child's own: its parent's went in its pass
      [listener.fileno, Thread.new { in_child { ForkSafe.last_pass[:listeners] } }.value,
       Fiber.new { ForkSafe.server_fork { in_child { ForkSafe.last_pass[:listeners] } } }.resume,
       in_child { in_child { ForkSafe.last_pass } }] # a child of the server's knows no server: no pass
    end
    listener = released.shift
    expect(released).to eq([[listener], [], nil])
  end

  it "sees a request's mark from a fiber of the request's thread (puma's fiber_per_request)" do
    listener, = tcp_connection
    released = ForkSafe.request { Fiber.new { in_child { ForkSafe.last_pass[:listeners] } }.resume }
    expect(released).to eq([listener.fileno])
  end

  it "gives a child none of its parent's marks: a worker spawned by the server releases listeners in its requests" do
    listener, = tcp_connection
    released = ForkSafe.server_fork do
      in_child { ForkSafe.request { in_child { ForkSafe.last_pass[:listeners] } } }
    end
    expect(released).to eq([listener.fileno])
  end

  it "forgets a request's socket once the app closed it: an outbound connection on its number stays live" do
    _listener, _outbound, accepted = tcp_connection
    database = track(TCPServer.new("127.0.0.1", 0))
    ForkSafe.request(accepted) do
      fd = accepted.fileno
      accepted.close # after a hijack, say
      outbound = track(TCPSocket.new("127.0.0.1", database.addr[1]))
      expect(outbound.fileno).to eq(fd)
      in_child { outbound.write("from the child") }
      expect(track(database.accept).readpartial(100)).to eq("from the child")
    end
  end

  it "gives a child none of its parent's requests in flight" do
    listener, _outbound, accepted = tcp_connection
    listener.close # no listener explains the client any more
    ForkSafe.request(accepted) do
      expect(kind_of_fd(accepted)).to eq(:client)
      expect(in_child(via: ->(&b) { ForkSafe.fork(keep: accepted, &b) }) { kind_of_fd(accepted) }).to eq(:connected)
    end
  end

  it "neutralizes a request's registered socket that no listener explains" do
    listener, outbound, accepted = tcp_connection
    listener.close
    ForkSafe.request(accepted) { running_child }
    accepted.close
    expect(seconds_to_eof(outbound, limit: 3)).to be < 1
  end

  it "leaves the child's outbound connections, pipes and log files working" do
    server, = tcp_connection
    database = track(TCPSocket.new("127.0.0.1", server.addr[1]))
    database_side = track(server.accept)
    Tempfile.create("forksafe-log") do |log|
      reader, writer = track(*IO.pipe)
      ForkSafe.request do
        in_child do
          database.write("SELECT 1")
          writer.write("pipe ok")
          log.write("log ok")
          log.flush
          nil
        end
      end
      expect(File.read(log.path)).to eq("log ok")
      writer.close
      expect(reader.read).to eq("pipe ok")
    end
    expect(database_side.readpartial(100)).to eq("SELECT 1")
  end

  it "is installed once, however often the gem is loaded" do
    load File.expand_path("../lib/unicorn/forksafe/fork_hook.rb", __dir__)
    expect(Process.singleton_class.ancestors.count(ForkSafe::ForkHook)).to eq(1)
  end

  it "counts the forks it sees in the parent" do
    before = ForkSafe.stats[:forks]
    in_child { nil }
    expect(ForkSafe.stats[:forks]).to eq(before + 1)
  end

  it "logs one line per child pass when debug is on" do
    Tempfile.create("forksafe-debug") do |file|
      ForkSafe.configure do |c|
        c.debug = true
        c.logger = Logger.new(file.path)
      end
      listener, _outbound, accepted = tcp_connection
      pid = in_child { Process.pid }
      expect(File.read(file.path)).to include(
        "forksafe: child #{pid} of #{Process.pid}: neutralized clients [#{accepted.fileno}], " \
        "released listeners [#{listener.fileno}]"
      )
    ensure
      ForkSafe.configure do |c|
        c.debug = false
        c.logger = nil # the default: the server's logger, else $stderr
      end
    end
  end
end
