# frozen_string_literal: true

# Programs that fork but serve no HTTP through a server the gem knows, each
# a real Ruby process (spec/fixtures/not_a_server) run with the gem loaded
# and without it. They hand an accepted connection to a child on purpose;
# the gem, loaded in them as Bundler.require loads it in every process of
# an app, must change nothing: the peer, the program's exit status and its
# stderr are the same as without the gem, and right.
RSpec.describe "a program that does not serve HTTP through a server we know", :e2e do
  # Runs a fixture in a process group of its own and a directory of its own
  # (its working directory), yields where it listens, then waits for it.
  def run_program(name, *args, gem:, &peer)
    Dir.mktmpdir("forksafe-not-a-server") do |dir|
      reader, writer = IO.pipe
      pid = spawn_program(name, args, gem:, dir:, out: writer)
      writer.close
      observe(pid, reader, dir, gem:, &peer)
    ensure
      reader&.close
      kill_group(pid) if pid # Support::Servers': the program and any child of it a failure left
    end
  end

  def spawn_program(name, args, gem:, dir:, out:)
    env = { "FORKSAFE_GEM" => gem ? "1" : "0",
            "RUBYLIB" => [Support::Servers::LIB, ENV.fetch("RUBYLIB", nil)].compact.join(":") }
    script = File.expand_path("../fixtures/not_a_server/#{name}.rb", __dir__)
    Process.spawn(env, RbConfig.ruby, script, *args.map(&:to_s),
                  pgroup: true, chdir: dir, out:, err: File.join(dir, "stderr"), in: File::NULL)
  end

  # What a run showed: what the peer read, how the program exited, and what
  # it (or a child of it) wrote on stderr.
  def observe(pid, reader, dir, gem:)
    address, loaded = Timeout.timeout(20) { reader.gets.to_s.split }
    raise "the program did not start: #{stderr_of(dir)}" unless address

    expect(loaded).to eq(gem ? "with" : "without") # the gem is there exactly when asked
    peer = yield(address)
    status = Timeout.timeout(10) { Process.wait2(pid).last }
    { peer:, exit_status: status.exitstatus, stderr: stderr_of(dir) }
  end

  def stderr_of(dir) = File.read(File.join(dir, "stderr"))

  # The bytes the peer reads until the connection ends, and how it ended
  # when that was not a plain EOF.
  def read_to_end(socket, limit: 10)
    received = +""
    Timeout.timeout(limit) { loop { received << socket.readpartial(65_536) } }
  rescue EOFError
    received
  rescue Errno::ECONNRESET, Errno::EPIPE => e
    "#{received}<#{e.class}>"
  rescue Timeout::Error
    "#{received}<no EOF after #{limit}s>"
  end

  # Sends a line on each connection (all open at once), then reads each.
  def exchange(sockets, lines)
    sockets.zip(lines).each { |socket, line| socket.write(line) }
    sockets.map { |socket| read_to_end(socket) }
  rescue Errno::ECONNRESET, Errno::EPIPE => e
    ["<#{e.class} on write>"]
  ensure
    sockets.each(&:close)
  end

  # An inetd-style server: three clients, each answered by its own child.
  def inetd(via, gem:)
    run_program("inetd", via, 3, gem:) do |port|
      exchange(Array.new(3) { TCPSocket.new("127.0.0.1", Integer(port)) }, Array.new(3) { |i| "hello #{i}\n" })
    end
  end

  # fork { $stdout.reopen(client); exec("printf", ...) }
  def handoff(gem:)
    run_program("handoff", gem:) { |port| read_to_end(TCPSocket.new("127.0.0.1", Integer(port))) }
  end

  # Passenger's core asks the preloader twice: each spawn command is
  # answered by a child on the connection that carried it.
  def preloader(gem:)
    run_program("preloader", 2, gem:) do |path|
      Array.new(2) { |i| exchange([UNIXSocket.new(path)], ["spawn #{i}\n"]).first }
    end
  end

  situations = {
    "an inetd-style server forking a child per connection with Kernel#fork" =>
      [->(gem) { inetd("kernel", gem:) }, Array.new(3) { |i| "child read: hello #{i}\n" }],
    "an inetd-style server forking a child per connection with fork(2) from C" =>
      [->(gem) { inetd("c", gem:) }, Array.new(3) { |i| "child read: hello #{i}\n" }],
    "a fork+exec hand-off of an accepted connection to printf" =>
      [->(gem) { handoff(gem:) }, "printed by printf\n"],
    "Passenger's preloader protocol, a child answering each spawn command" =>
      [->(gem) { preloader(gem:) }, Array.new(2) { |i| %({"spawned":"spawn #{i}"}\n) }]
  }

  situations.each do |name, (run, peer)|
    it "#{name}: the peer gets the child's answer, without the gem" do
      expect(instance_exec(false, &run)).to eq({ peer:, exit_status: 0, stderr: "" })
    end

    it "#{name}: the peer gets the child's answer with the gem, exactly as without" do
      expect(instance_exec(true, &run)).to eq({ peer:, exit_status: 0, stderr: "" })
    end
  end
end
