# frozen_string_literal: true

require "stringio"

RSpec.describe "ForkSafe::Native argument checking" do
  let(:unused_fd) { (1000..65_000).find { |fd| !ForkSafe::Native.open_fds.include?(fd) } }

  %i[neutralize shutdown].each do |name|
    describe ".#{name}" do
      define_method(:call) { |value| ForkSafe::Native.public_send(name, value) }

      {
        -1 => /fd: -1 is not a valid file descriptor/,
        2**31 => /fd: 2147483648 is not a valid file descriptor/,
        2**70 => /fd: 1180591620717411303424 is not a valid file descriptor/
      }.each do |value, message|
        it "rejects #{value} with ArgumentError" do
          expect { call(value) }.to raise_error(ArgumentError, message)
        end
      end

      [nil, "3", 1.5, :fd, [3]].each do |value|
        it "rejects #{value.inspect} with TypeError naming the argument" do
          expect { call(value) }.to raise_error(TypeError, /fd: expected an Integer file descriptor or an IO, got/)
        end
      end

      it "rejects a closed IO" do
        _listener, outbound, = tcp_connection
        outbound.close
        expect { call(outbound) }.to raise_error(ArgumentError, /fd: #<TCPSocket:\(closed\)> is closed/)
      end

      it "rejects an IO with no descriptor" do
        expect { call(StringIO.new) }.to raise_error(ArgumentError, /has no file descriptor/)
      end

      it "rejects an fd that is not open" do
        expect { call(unused_fd) }.to raise_error(ArgumentError, /fd: #{unused_fd} is not an open file descriptor/)
      end

      it "rejects a pipe, which is not a socket, and leaves it working" do
        reader, writer = track(*IO.pipe)
        expect { call(writer) }.to raise_error(ArgumentError, /fd: #{writer.fileno} is not a socket/)
        writer.write("still works")
        writer.close
        expect(reader.read).to eq("still works")
      end
    end
  end

  describe ".sockets" do
    it "wants an Array" do
      expect { ForkSafe::Native.sockets(3) }.to raise_error(TypeError, /registered: expected an Array/)
    end

    it "names a bad element" do
      expect { ForkSafe::Native.sockets([3, -4]) }.to raise_error(ArgumentError, /registered element: -4/)
    end
  end

  describe ".child_pass" do
    # A half-done pass would be worse than none: these run in a child so a
    # wrongly started pass could not harm this process's sockets.
    def pass_error(*args)
      in_child do
        ForkSafe::Native.child_pass(*args)
        nil
      rescue StandardError => e
        [e.class, e.message]
      end
    end

    it "wants arrays and a boolean, naming which argument was wrong" do
      expect(pass_error("x", true, []))
        .to eq([TypeError, "keep: expected an Array of file descriptors or IOs, got String"])
      expect(pass_error([], nil, []))
        .to eq([TypeError, "release_listeners: expected true or false, got nil"])
      expect(pass_error([], true, {}))
        .to eq([TypeError, "registered: expected an Array of file descriptors or IOs, got Hash"])
      expect(pass_error([1.5], true, []))
        .to eq([TypeError, "keep element: expected an Integer file descriptor or an IO, got Float"])
    end

    it "touches nothing when an argument is bad" do
      _listener, _outbound, accepted = tcp_connection
      expect(in_child do
        ForkSafe::Native.child_pass([], true, [-1])
      rescue ArgumentError
        kind_of_fd(accepted)
      end).to eq(:client)
    end

    it "raises for the wrong number of arguments" do
      expect { ForkSafe::Native.child_pass([], true) }.to raise_error(ArgumentError, /wrong number of arguments/)
    end
  end

  describe "the plan and the requests in flight, which take plain data" do
    it "rejects what is not an Array of Integers" do
      expect { ForkSafe::Native.arm_pass([3, "x"], true) }.to raise_error(TypeError)
      expect { ForkSafe::Native.arm_pass([2**40], true) }.to raise_error(RangeError)
      expect { ForkSafe::Native.arm_pass(3, true) }.to raise_error(TypeError)
    end

    it "names a request's socket that is not open" do
      expect { ForkSafe::Native.request_begin(unused_fd) }
        .to raise_error(ArgumentError, /socket: #{unused_fd} is not an open file descriptor/)
      expect { ForkSafe::Native.request_end(-1) }.to raise_error(RangeError)
    end
  end

  it "defines ForkSafe::Error as a StandardError" do
    expect(ForkSafe::Error.ancestors).to include(StandardError)
  end
end
