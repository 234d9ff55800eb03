# frozen_string_literal: true

require "stringio"

# The Ruby API with wrong arguments: a clear exception naming what was
# wrong, and nothing half done. (ForkSafe.fork's options and the native
# core's arguments have their own specs.)
RSpec.describe "bad input to the Ruby API" do
  describe "ForkSafe.closing" do
    it "wants an IO, or an object whose to_io is one" do
      [nil, 3, "socket", StringIO.new].each do |value|
        expect { ForkSafe.closing(value) { nil } }
          .to raise_error(TypeError, /closing: expected an IO, or an object whose to_io is one, got #{value.class}/)
      end
    end

    it "wants the block that closes, and a boolean writes_first:, and closes nothing without them" do
      _listener, outbound, accepted = tcp_connection
      expect { ForkSafe.closing(accepted) }.to raise_error(ArgumentError, /a block that closes the socket is required/)
      expect { ForkSafe.closing(accepted, writes_first: 1) { accepted.close } }
        .to raise_error(ArgumentError, "writes_first: must be true or false, got 1")
      expect(accepted).not_to be_closed
      expect(outbound.wait_readable(0.1)).to be_nil # no shutdown either: no EOF
    end
  end

  describe "ForkSafe.handed_off?" do
    it "wants an IO, and is false for a closed one" do
      expect { ForkSafe.handed_off?(:io) }.to raise_error(TypeError, /handed_off\?: expected an IO/)
      _listener, outbound, = tcp_connection
      outbound.close
      expect(ForkSafe.handed_off?(outbound)).to be(false)
    end
  end

  describe "ForkSafe.request and ForkSafe.server_fork" do
    it "want a block" do
      expect { ForkSafe.request }.to raise_error(ArgumentError, /request: a block is required/)
      expect { ForkSafe.server_fork }.to raise_error(ArgumentError, /server_fork: a block is required/)
    end

    it "names a request socket that is not one, and marks nothing: a process that knew no server still does not" do
      reader, = track(*IO.pipe)
      errors = in_child do
        [-> { ForkSafe.request("x") { nil } }, -> { ForkSafe.request(reader) { nil } },
         -> { ForkSafe::Native.request_begin(999_999) }].map do |request|
          request.call
        rescue TypeError, ArgumentError => e
          "#{e.class}: #{e.message}"
        end + [ForkSafe.role]
      end
      expect(errors).to match([/TypeError: socket: expected/, /ArgumentError: socket: #<IO:fd \d+> is not a socket/,
                               /ArgumentError: socket: 999999 is not an open file descriptor/, :unknown])
    end

    it "names a server's logger that is none, and keeps the first one given" do
      results = in_child do
        first = Logger.new(File::NULL)
        errors = [-> { ForkSafe.serving(Object.new) }, -> { ForkSafe.master("log") }].map do |call|
          call.call
        rescue TypeError => e
          e.message
        end
        ForkSafe.serving(first)
        ForkSafe.master(Logger.new(File::NULL))
        [*errors, ForkSafe.config.logger.equal?(first)]
      end
      expect(results).to eq(["logger: expected a Logger (anything with info and warn), got Object",
                             "logger: expected a Logger (anything with info and warn), got String", true])
    end

    it "lets a child whose logger fails run its block, and says so on stderr" do
      broken = Class.new do
        def info(*) = raise(IOError, "closed stream")
        def warn(*) = raise(IOError, "closed stream")
      end
      reader, writer = track(*IO.pipe)
      ran = in_child do
        $stderr.reopen(writer)
        ForkSafe.serving(broken.new)
        ForkSafe.config.debug = true
        in_child { :ran }
      end
      writer.close
      expect(ran).to eq(:ran)
      expect(reader.read).to include("after fork: IOError: closed stream")
    end

    it "names a role that is not one" do
      expect { ForkSafe::Native.rise_to(:boss, nil) }
        .to raise_error(ArgumentError, /role: must be :master or :serving, got :boss/)
      expect { ForkSafe::Native.rise_to("master", nil) }.to raise_error(TypeError)
    end
  end

  describe "FORKSAFE_DEBUG" do
    around do |example|
      saved = ENV.fetch("FORKSAFE_DEBUG", nil)
      example.run
    ensure
      ENV["FORKSAFE_DEBUG"] = saved
    end

    it "turns debug on for 1, true, yes and on, and leaves it off for 0, false, no, off and nothing" do
      debug = %w[1 true YES on 0 false no off].push("").to_h do |value|
        ENV["FORKSAFE_DEBUG"] = value
        [value, ForkSafe::Configuration.new.debug]
      end
      expect(debug.values).to eq(([true] * 4) + ([false] * 5))
    end
  end

  describe "ForkSafe.configure" do
    it "wants booleans and a logger, and keeps the old value otherwise" do
      config = ForkSafe.config
      expect { config.fork_hook = "off" }.to raise_error(ArgumentError, 'fork_hook: must be true or false, got "off"')
      expect { config.debug = 1 }.to raise_error(ArgumentError, "debug: must be true or false, got 1")
      expect { config.logger = $stderr.fileno }.to raise_error(TypeError, /logger: expected a Logger .* got Integer/)
      expect(config.fork_hook).to be(true)
    end
  end
end
