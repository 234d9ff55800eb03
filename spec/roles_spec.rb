# frozen_string_literal: true

# The role of a process decides what its forks drop. The suite's process
# serves (spec_helper); each example here starts from a child of it, which
# knows no server (:unknown) until it says otherwise.
RSpec.describe "roles", compat: %w[ruby3.4_puma_6.6] do
  # What the peer of an accepted connection gets when a child of this
  # process, forked by `via`, writes into its copy of the connection and
  # the parent then closes its own plainly.
  def child_write_reaches_peer(via, outbound = nil, accepted = nil)
    _listener, outbound, accepted = tcp_connection unless accepted
    pid = via.call { exit!(accepted.write("from the child") && 0) rescue exit!(3) } # rubocop:disable Style/RescueModifier
    _, status = Process.wait2(pid)
    accepted.close
    [status.exitstatus, read_until_eof(outbound, 3).last]
  end

  forks = { "Kernel#fork" => ->(&block) { Process.fork(&block) } }

  it "starts a child of a server's process as :unknown, and rises, never falls" do
    roles = in_child do
      [ForkSafe.role, ForkSafe.master(nil), ForkSafe.role, ForkSafe.serving(nil), ForkSafe.master(nil), ForkSafe.role,
       ForkSafe.serving?]
    end
    expect(roles).to eq([:unknown, :master, :master, :serving, :serving, :serving, true])
  end

  it "makes a process that marks a request :serving" do
    expect(in_child { ForkSafe.request { ForkSafe.role } }).to eq(:serving)
  end

  it "starts the server's own forks as :master, any other child as :unknown" do
    roles = in_child do
      ForkSafe.master(nil)
      [in_child { ForkSafe.role }, ForkSafe.server_fork { in_child { ForkSafe.role } },
       in_child(via: ForkSafe.method(:fork)) { ForkSafe.role }]
    end
    expect(roles).to eq(%i[unknown master unknown])
  end

  it "gives no role to the server's own fork where no server is known" do
    expect(in_child { ForkSafe.server_fork { in_child { ForkSafe.role } } }).to eq(:unknown)
  end

  describe "where no server is known" do
    forks.merge("fork(2) from C" => :c_fork).each do |name, via|
      it "leaves a child forked with #{name} its inherited connection, as without the gem" do
        result = in_child { child_write_reaches_peer(via == :c_fork ? c_fork : via) }
        expect(result).to eq([0, "from the child"])
      end
    end

    it "makes the pass ForkSafe.fork asks for" do
      result = in_child { child_write_reaches_peer(ForkSafe.method(:fork)) }
      expect(result).to eq([3, ""]) # EPIPE in the child
    end

    it "leaves an IO.popen(\"-\") child its listener" do
      kinds = in_child do
        listener, = tcp_connection
        IO.popen("-") { |io| io ? io.read : print(kind_of_fd(listener)) }
      end
      expect(kinds).to eq("listener")
    end
  end

  %i[master serving].each do |role|
    describe "in a #{role} process" do
      it "makes every fork drop the connections, from Kernel#fork or fork(2) from C" do
        results = in_child do
          ForkSafe.public_send(role, nil)
          [child_write_reaches_peer(forks["Kernel#fork"]), child_write_reaches_peer(c_fork)]
        end
        expect(results).to eq([[3, ""]] * 2)
      end

      it "releases the listeners in every fork but the server's own" do
        released = in_child do
          ForkSafe.public_send(role, nil)
          listener, = tcp_connection
          [listener.fileno, in_child { ForkSafe.last_pass[:listeners] },
           ForkSafe.server_fork { in_child { ForkSafe.last_pass[:listeners] } }]
        end
        listener = released.shift
        expect(released).to eq([[listener], []])
      end
    end
  end

  # A graceful stop closes the listeners while connections are still open:
  # those the server registered (puma's reactor, Thin's) stay its clients.
  it "drops a connection the server registered after its listener closed" do
    result = in_child do
      ForkSafe.serving(nil)
      listener, outbound, accepted = tcp_connection
      ForkSafe.connection_opened(accepted)
      listener.close
      child_write_reaches_peer(forks["Kernel#fork"], outbound, accepted)
    end
    expect(result).to eq([3, ""])
  end

  # A full hijack: the app takes a registered connection over and closes
  # it, with no connection_closed; the next connection takes its number.
  def after_a_hijack_and_a_graceful_stop
    listener, _first_peer, hijacked = tcp_connection
    ForkSafe.connection_opened(hijacked)
    outbound = track(TCPSocket.new("127.0.0.1", listener.addr[1]))
    number = hijacked.fileno
    hijacked.close
    accepted = track(listener.accept)
    ForkSafe.connection_opened(accepted)
    listener.close
    [accepted.fileno == number, child_write_reaches_peer(Process.method(:fork), outbound, accepted)]
  end

  it "drops a registered connection on a number a hijacked one had, after the listener closed" do
    result = in_child do
      ForkSafe.serving(nil)
      after_a_hijack_and_a_graceful_stop
    end
    expect(result).to eq([true, [3, ""]])
  end

  it "without the gem, leaves that connection to the child" do
    result = in_child do
      ForkSafe.serving(nil)
      ForkSafe.config.fork_hook = false
      after_a_hijack_and_a_graceful_stop
    end
    expect(result).to eq([true, [0, "from the child"]])
  end

  # The dead end in a client's place keeps the flag the client has at the
  # fork: a program the child execs gets neither the client nor a number
  # it did not have.
  def close_on_exec_after_the_fork
    ForkSafe.serving(nil)
    _listener, _outbound, accepted = tcp_connection
    ForkSafe.connection_opened(accepted)
    accepted.close_on_exec = false
    in_child { [kind_of_fd(accepted), accepted.close_on_exec?] }
  end

  it "keeps a dropped client's close-on-exec flag as it is at the fork, not at its registration" do
    expect(in_child { close_on_exec_after_the_fork }).to eq([:connected, false]) # the dead end
  end

  it "without the gem, leaves the client with its flag" do
    result = in_child do
      ForkSafe.config.fork_hook = false
      close_on_exec_after_the_fork
    end
    expect(result).to eq([:client, false])
  end

  it "without the registration, takes such a connection for an outbound one, which may have that port" do
    result = in_child do
      ForkSafe.serving(nil)
      listener, outbound, accepted = tcp_connection
      listener.close
      child_write_reaches_peer(forks["Kernel#fork"], outbound, accepted)
    end
    expect(result).to eq([0, "from the child"])
  end

  # Passenger's preloader beside an in-process puma, a test suite's own
  # inetd-style component beside Capybara's server.
  it "leaves a listener that is none of the server's, and its connections, as without the gem" do
    result = in_child do
      ForkSafe.serving(nil)
      listener = track(TCPServer.new("127.0.0.1", 0)) # opened after the server said its role
      outbound = track(TCPSocket.new("127.0.0.1", listener.addr[1]))
      [child_write_reaches_peer(forks["Kernel#fork"], outbound, track(listener.accept)),
       in_child { kind_of_fd(listener) }]
    end
    expect(result).to eq([[0, "from the child"], :listener])
  end

  # A listener of the app's on the server's port at another address, both
  # bound with SO_REUSEPORT (or beside a v6-only [::] listener).
  def server_and_app_listener_on_one_port
    server = reuseport_listener("0.0.0.0", 0)
    app = reuseport_listener("127.0.0.1", server.local_address.ip_port)
    ForkSafe.serving(nil, listeners: [server])
    [kind_of_fd(server), kind_of_fd(app), in_child { [kind_of_fd(server), kind_of_fd(app)] }]
  end

  def reuseport_listener(host, port)
    socket = track(Socket.new(:INET, :STREAM))
    socket.setsockopt(:SOCKET, :REUSEPORT, true)
    socket.bind(Addrinfo.tcp(host, port))
    socket.listen(8)
    socket
  end

  it "releases the server's listener and leaves the app's on the same port" do
    expect(in_child { server_and_app_listener_on_one_port })
      .to eq([:listener, :listener, %i[connected listener]]) # the dead end is a socketpair's
  end

  it "without the gem, leaves both listeners to the child" do
    result = in_child do
      ForkSafe.config.fork_hook = false
      server_and_app_listener_on_one_port
    end
    expect(result).to eq([:listener, :listener, %i[listener listener]])
  end

  # A test suite's own forking component beside Capybara's puma, or
  # Passenger's preloader beside an in-process metrics server: puma says
  # which listeners are its own.
  it "leaves a listener opened before an in-process puma serves, and its connections, as without the gem" do
    result = in_child do
      require "puma"
      require "puma/server"
      listener = track(TCPServer.new("127.0.0.1", 0))
      puma = Puma::Server.new(->(_env) { [200, {}, ["ok"]] })
      puma.add_tcp_listener("127.0.0.1", 0)
      puma.run
      outbound = track(TCPSocket.new("127.0.0.1", listener.addr[1]))
      [ForkSafe.role, child_write_reaches_peer(forks["Kernel#fork"], outbound, track(listener.accept))]
    end
    expect(result).to eq([:serving, [0, "from the child"]])
  end
end
