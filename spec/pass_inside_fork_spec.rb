# frozen_string_literal: true

require "open3"

# The child's pass runs inside fork(2) itself (a fork handler of the native
# core), before fork returns to any code of the child: another library's
# Process._fork hook, a C extension's fork, the app.
RSpec.describe "the child's pass inside fork", compat: %w[debian13 ruby3.4_puma_6.6] do
  # A Ruby process serving one connection with `script`: it prints its
  # port, accepts the test's connection as $client and runs the rest.
  # Returns what the test's client read and the seconds until EOF.
  def serve_one(script, requires: [])
    prelude = 'require "socket"; listener = TCPServer.new("127.0.0.1", 0); puts listener.addr[1]; ' \
              "$stdout.flush; $client = listener.accept\n"
    lib = File.expand_path("../lib", __dir__)
    Open3.popen2(RbConfig.ruby, "-I", lib, *requires.map { |r| "-r#{r}" }, "-e", prelude + script) do |_in, out, wait|
      client = track(TCPSocket.new("127.0.0.1", Integer(out.gets)))
      read_until_eof(client, 5).reverse.tap { wait.value }
    end
  end

  # A _fork hook prepended before the gem's, as ActiveSupport's ForkTracker
  # is when a Gemfile loads Rails first: its code in the child runs before
  # any of the gem's Ruby code would.
  def earlier_hook
    <<~RUBY
      module EarlierHook
        def _fork
          pid = super
          if pid.zero?
            begin
              $client.write("bytes from an earlier _fork hook's child")
            rescue SystemCallError
              nil
            end
          end
          pid
        end
      end
      Process.singleton_class.prepend(EarlierHook)
    RUBY
  end

  def fork_under_earlier_hook(gem:)
    serve_one(<<~RUBY)
      #{earlier_hook}
      require "unicorn/forksafe" if #{gem}
      ForkSafe.serving(nil) if #{gem} # a server's process, as a worker is
      pid = fork { sleep 3 }
      $client.close # a plain close: only the child's copy could keep the client
      Process.wait(pid)
    RUBY
  end

  it "has the clients gone already when an earlier _fork hook runs in the child" do
    received, seconds = fork_under_earlier_hook(gem: true)
    expect(received).to eq("")
    expect(seconds).to be < 1
  end

  it "without the gem, lets that hook write into the client, which waits for the child" do
    received, seconds = fork_under_earlier_hook(gem: false)
    expect(received).to eq("bytes from an earlier _fork hook's child")
    expect(seconds).to be > 2
  end

  describe "a fork(2) from C, which no Ruby hook sees" do
    # What the child's write into the client gave, what the client read
    # once the parent closed its copy plainly (no shutdown), and when. The
    # child lingers: it holds whatever it still holds.
    def reach_client_from_c_child
      _listener, outbound, accepted = tcp_connection
      reader, writer = track(*IO.pipe)
      child(via: c_fork) { writer.puts(write_into(accepted)) || sleep(3) }
      writer.close
      written = reader.gets.chomp
      accepted.close
      [written, *read_until_eof(outbound, 5).reverse]
    end

    def write_into(socket)
      socket.write_nonblock("from the child", exception: false).inspect
    rescue SystemCallError => e
      e.class.name
    end

    it "leaves the child no way to the client" do
      written, received, seconds = reach_client_from_c_child
      expect(written).to eq("Errno::EPIPE")
      expect(received).to eq("")
      expect(seconds).to be < 1
    end

    it "with the fork hook off, makes no pass: the child writes into the client, which waits for it",
       :without_hook do
      written, received, seconds = reach_client_from_c_child
      expect(written).to eq("14")
      expect(received).to eq("from the child")
      expect(seconds).to be > 2
    end
  end

  it "forks with its own thread's plan while another thread arms one of its own" do
    received, seconds = serve_one(<<~RUBY)
      module SlowHook # before the gem's: Ruby switches threads between the arming and the fork
        def _fork
          sleep 0.3
          super
        end
      end
      Process.singleton_class.prepend(SlowHook)
      require "unicorn/forksafe"
      spawner = Thread.new { loop { system("true") } }
      pid = ForkSafe.fork(keep: $client) { $client.write("from the kept child") }
      Process.wait(pid)
      spawner.kill
      $client.close
    RUBY
    expect(received).to eq("from the kept child")
    expect(seconds).to be < 1
  end

  it "lets Process.daemon inside a request go on answering its client" do
    received, seconds = serve_one(<<~RUBY, requires: ["unicorn/forksafe"])
      ForkSafe.serving(Logger.new($stderr))
      ForkSafe.request($client) do
        Process.daemon(true, true)
        $client.write("answer from the daemon")
        $client.close
      end
    RUBY
    expect(received).to eq("answer from the daemon")
    expect(seconds).to be < 1
  end

  it "hands a client redirected to a spawned program to that program" do
    _listener, outbound, accepted = tcp_connection
    ForkSafe.request(accepted) { system("printf", "answer from a program", out: accepted) }
    accepted.close
    expect(read_until_eof(outbound, 5).last).to eq("answer from a program")
  end

  # One fiber waits for a program while another forks with fork(2) from C:
  # the no-pass plan of the program's making is over by then.
  describe "under a fiber scheduler" do
    # What a client got from the child of a fork(2) from C in one fiber of a
    # serving process, made while another fiber waits in `waiter`.
    def c_fork_while_a_fiber_waits(&)
      in_child do
        ForkSafe.serving(nil)
        _listener, outbound, accepted = tcp_connection
        Fiber.set_scheduler(Support::FiberScheduler.new)
        Fiber.schedule(&)
        Fiber.schedule { c_fork_writing_into(accepted) }
        Fiber.set_scheduler(nil) # runs both fibers to their end
        read_until_eof(outbound.tap { accepted.close }, 5).last
      end
    end

    def c_fork_writing_into(socket)
      Process.wait(c_fork.call { exit!(written?(socket) ? 0 : 1) })
    end

    def written?(socket)
      socket.write_nonblock("from the child")
    rescue SystemCallError
      false
    end

    it "makes the pass in a fork from C while another fiber waits for system" do
      expect(c_fork_while_a_fiber_waits { system("sleep", "1") }).to eq("")
    end

    it "makes the pass in a fork from C while another fiber waits for a backtick" do
      expect(c_fork_while_a_fiber_waits { `sleep 1` }).to eq("")
    end

    it "without the gem's pass (the hook off), lets that child write into the client" do
      ForkSafe.config.fork_hook = false
      expect(c_fork_while_a_fiber_waits { system("sleep", "1") }).to eq("from the child")
    ensure
      ForkSafe.config.fork_hook = true
    end

    it "still answers system and backticks as Kernel does" do
      answers = in_child do
        Fiber.set_scheduler(Support::FiberScheduler.new)
        results = []
        Fiber.schedule do
          results << system("true") << system("false") << system("no-such-program-here") << `echo hi`
          results << begin
            system("false", exception: true)
          rescue RuntimeError => e
            e.message
          end
        end
        Fiber.set_scheduler(nil)
        results
      end
      expect(answers).to eq([true, false, nil, "hi\n", "Command failed with exit 1: false"])
    end
  end
end
