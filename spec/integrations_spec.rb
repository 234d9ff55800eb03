# frozen_string_literal: true

require "tmpdir"

# Integrations install whether the server loads before or after the gem.
RSpec.describe ForkSafe::Integrations do
  def installer(log)
    ->(klass) { log << klass }
  end

  it "installs at once for a class already loaded" do
    installed = []
    described_class.when_defined("ForkSafe::Registry", &installer(installed))
    expect(installed).to eq([ForkSafe::Registry])
  end

  it "installs when a class loaded later ends its body, not before" do
    installed = []
    described_class.when_defined("ForkSafeSpecLater::Server", &installer(installed))
    module ForkSafeSpecLater
      class Server
        def process_client; end
      end
    end
    server = ForkSafeSpecLater::Server
    expect(installed).to eq([server])
    expect(server.method_defined?(:process_client)).to be(true)
  ensure
    Object.send(:remove_const, :ForkSafeSpecLater) if defined?(ForkSafeSpecLater)
  end

  it "leaves an autoload alone until the server's own code runs it" do
    Dir.mktmpdir("forksafe-autoload") do |dir|
      File.write(File.join(dir, "server.rb"), "module ForkSafeSpecLazy; class Server; end; end\n")
      installed = []
      lazy = stub_const("ForkSafeSpecLazy", Module.new)
      lazy.autoload(:Server, File.join(dir, "server.rb"))
      described_class.when_defined("ForkSafeSpecLazy::Server", &installer(installed))
      expect(lazy.autoload?(:Server)).not_to be_nil
      expect(installed).to be_empty
      loaded = lazy::Server # the server's own code touches it
      expect(installed).to eq([loaded])
    end
  end

  describe ".install" do
    let(:integration) { Module.new { def self.version = "testserver 9.9" } }
    let(:server) { stub_const("ForkSafeSpecServer", Class.new { def call = :called }) }

    def hook(name, without_it = "nothing is protected")
      Module.new do
        const_set(:WITHOUT_IT, without_it)
        define_method(name) { [:hooked, super()] }
      end
    end

    # A logger that keeps its lines, for a child to hand back.
    def lines_logger
      Struct.new(:lines) do
        def info(line) = lines << line
        def warn(line) = lines << line
      end.new([])
    end

    it "prepends the first hook whose methods the server has" do
      full_hijack = hook(:full_hijack)
      call = hook(:call)
      described_class.install(server, full_hijack, call, server: integration)
      expect(server.ancestors).to include(call)
      expect(server.ancestors).not_to include(full_hijack)
      expect(server.new.call).to eq(%i[hooked called])
    end

    it "says once, through the server's logger when it serves, which protection a version lacks" do
      log = in_child do
        described_class.install(server, hook(:full_hijack, "hijacks are plain closes"), server: integration)
        logger = lines_logger
        2.times { described_class.serving { logger } }
        logger.lines
      end
      expect(log).to eq(["forksafe: testserver 9.9 has no ForkSafeSpecServer#full_hijack: hijacks are plain closes"])
      expect(server.instance_methods).not_to include(:full_hijack)
    end
  end
end
