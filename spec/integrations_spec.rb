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
end
