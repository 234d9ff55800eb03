# frozen_string_literal: true

require "stringio"

# What a caller gives for a socket is turned into an fd once, on the Ruby
# side (ForkSafe::Descriptors), with a message naming the argument; the
# native core takes plain data, and names what the kernel refused.
RSpec.describe "argument checking", compat: %w[ruby3.4_puma_6.6] do
  let(:unused_fd) { (1000..65_000).find { |fd| !ForkSafe::Native.open_fds.include?(fd) } }

  describe "ForkSafe::Descriptors.fd" do
    def call(value) = ForkSafe::Descriptors.fd(value, "fd")

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

    it "takes an IO, or an object whose to_io is one" do
      _listener, outbound, = tcp_connection
      expect([call(outbound), call(Struct.new(:to_io).new(outbound)), call(7)]).to eq(([outbound.fileno] * 2) + [7])
    end

    it "names the element of a list" do
      expect { ForkSafe::Descriptors.list([3, 1.5], "keep") }.to raise_error(TypeError, /keep element: expected/)
    end
  end

  %i[neutralize shutdown].each do |name|
    describe "ForkSafe::Native.#{name}" do
      define_method(:call) { |value| ForkSafe::Native.public_send(name, value) }

      it "rejects an fd that is not open" do
        expect { call(unused_fd) }.to raise_error(ArgumentError, /fd: #{unused_fd} is not an open file descriptor/)
      end

      it "rejects a pipe, which is not a socket, and leaves it working" do
        reader, writer = track(*IO.pipe)
        expect { call(writer.fileno) }.to raise_error(ArgumentError, /fd: #{writer.fileno} is not a socket/)
        writer.write("still works")
        writer.close
        expect(reader.read).to eq("still works")
      end

      it "takes only an Integer in the range of an fd" do
        expect { call("3") }.to raise_error(TypeError)
        expect { call(2**40) }.to raise_error(RangeError)
      end
    end
  end

  describe "ForkSafe::Native.child_pass" do
    it "touches nothing when an argument is bad" do
      _listener, _outbound, accepted = tcp_connection
      expect(in_child do
        ForkSafe::Native.child_pass([], true, ["x"])
      rescue TypeError
        kind_of_fd(accepted)
      end).to eq(:client)
    end

    it "raises for the wrong number of arguments" do
      expect { ForkSafe::Native.child_pass([], true) }.to raise_error(ArgumentError, /wrong number of arguments/)
    end
  end

  describe "the plan and the requests in flight" do
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
