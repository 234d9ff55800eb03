# frozen_string_literal: true

require "open3"
require "rbconfig"
require "tmpdir"

# Integrations install whether the server loads before or after the gem,
# and whether or not the class has its methods yet.
RSpec.describe ForkSafe::Integrations, compat: %w[debian13 ruby3.4_puma_6.6] do
  let(:integration) { Module.new { def self.version = "testserver 9.9" } }

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

  it "installs at once in a class already loaded, the first hook whose methods it has" do
    server = stub_const("ForkSafeSpecLoaded", Class.new { def call = :called })
    full_hijack = hook(:full_hijack)
    call = hook(:call)
    described_class.install("ForkSafeSpecLoaded", full_hijack, call, server: integration)
    expect(server.ancestors).to include(call)
    expect(server.ancestors).not_to include(full_hijack)
    expect(server.new.call).to eq(%i[hooked called])
  end

  it "installs when a class loaded later has the method at the end of a body, in whichever file" do
    call = hook(:call)
    described_class.install("ForkSafeSpecLater::Server", call, server: integration)
    # Opened first in one file, as puma's Cluster is.
    require library("module ForkSafeSpecLater; class Server; def spawn = nil; end; end\n")
    expect(ForkSafeSpecLater::Server.ancestors).not_to include(call)
    require library("module ForkSafeSpecLater; class Server; def call = :called; end; end\n")
    expect(ForkSafeSpecLater::Server.new.call).to eq(%i[hooked called])
  ensure
    Object.send(:remove_const, :ForkSafeSpecLater) if defined?(ForkSafeSpecLater)
  end

  it "leaves an autoload alone until the server's own code runs it" do
    Dir.mktmpdir("forksafe-autoload") do |dir|
      File.write(File.join(dir, "server.rb"), "module ForkSafeSpecLazy; class Server; def call = :called; end; end\n")
      lazy = stub_const("ForkSafeSpecLazy", Module.new)
      lazy.autoload(:Server, File.join(dir, "server.rb"))
      described_class.install("ForkSafeSpecLazy::Server", hook(:call), server: integration)
      expect(lazy.autoload?(:Server)).not_to be_nil
      expect(lazy::Server.new.call).to eq(%i[hooked called]) # the server's own code touches it
    end
  end

  it "says once, through the server's logger when it serves, which protection a loaded version lacks" do
    log = in_child do
      stub_const("ForkSafeSpecOld", Class.new { def call = :called })
      described_class.install("ForkSafeSpecOld", hook(:full_hijack, "hijacks are plain closes"), server: integration)
      described_class.install("ForkSafeSpecNeverLoaded", hook(:call), server: integration)
      logger = lines_logger
      2.times { described_class.serving { logger } }
      logger.lines
    end
    expect(log).to eq(["forksafe: testserver 9.9 has no ForkSafeSpecOld#full_hijack: hijacks are plain closes"])
  end

  # What `script` prints in a new Ruby, after `requires`: no class of this
  # process is there. `traces` counts the TracePoints enabled.
  def fresh_ruby(script, requires: [])
    lib = File.expand_path("../lib", __dir__)
    requires = [*requires, "unicorn/forksafe", "logger"].flat_map { |feature| ["-r", feature] }
    prelude = "def traces = ObjectSpace.each_object(TracePoint).count(&:enabled?)\n"
    out, status = Open3.capture2(RbConfig.ruby, "-I", lib, *requires, "-e", prelude + script)
    expect(status).to be_success
    out
  end

  # A file that defines `text`, for a fresh Ruby to require: servers are
  # loaded by require, which is watched.
  def library(text)
    dir = Dir.mktmpdir("forksafe-lib")
    @libraries = [*@libraries, dir]
    File.join(dir, "lib.rb").tap { |path| File.write(path, text) }
  end

  after { FileUtils.rm_rf(@libraries) if @libraries }

  # Under unicorn, in an app whose Gemfile has puma too: puma's classes are
  # loaded, if ever, after the worker serves.
  it "waits for no server once the process serves: a class loaded after is not hooked" do
    server = library("module Puma\n  class Server\n    def run = :ran\n  end\nend\n")
    out = fresh_ruby(<<~RUBY)
      Gem.loaded_specs.delete("railties") # a bundle without Rails
      ForkSafe::Integrations.serving { Logger.new(nil) }
      require #{server.inspect}
      p Puma::Server.ancestors.include?(ForkSafe::Integrations::Puma::Serving)
    RUBY
    expect(out).to eq("false\n")
  end

  # Unicorn without preload_app serves before it loads the app, and Rails.
  # (Defined where Rails is installed: not in the Ruby 3.4 cell.)
  if Support::Versions.installed("railties")
    it "waits past serving for Rails in a bundle that has it, until Rails is loaded" do
      out = fresh_ruby(<<~RUBY)
        ForkSafe::Integrations.serving { Logger.new(nil) }
        serving = defined?(ForkSafe::Railtie)
        require "rails"
        p [serving, defined?(ForkSafe::Railtie)]
      RUBY
      expect(out).to eq("[nil, \"constant\"]\n")
    end
  end

  # A job runner, rake or a console of a Rails app: Bundler.require loads
  # puma's namespace (its classes autoload), and the app opens classes.
  it "never traces, in a process that loads a server's namespace or not" do
    out = fresh_ruby(<<~RUBY, requires: ["puma"])
      seen = [traces]
      require "json"
      Kernel.require "set"
      Class.new.class_eval { def later = nil }
      p seen << traces
    RUBY
    expect(out).to eq("[0, 0]\n")
  end

  it "hooks a class when the require that defines it returns, whole or a file at a time, Kernel.require too" do
    whole = library("module Puma\n  class Server\n    def run = :ran\n  end\nend\n")
    opened = library("module Puma\n  class Cluster\n  end\nend\n")
    methods = library("module Puma\n  class Cluster\n    def run = nil\n    def spawn_workers = nil\n  end\nend\n")
    out = fresh_ruby(<<~RUBY)
      Kernel.require #{whole.inspect}
      require #{opened.inspect}
      opened = Puma::Cluster.ancestors.include?(ForkSafe::Integrations::Puma::Master)
      require #{methods.inspect}
      p [Puma::Server.ancestors.include?(ForkSafe::Integrations::Puma::Serving), opened,
         Puma::Cluster.ancestors.include?(ForkSafe::Integrations::Puma::Master), traces]
    RUBY
    expect(out).to eq("[true, false, true, 0]\n")
  end

  it "hooks a class an autoload defines" do
    server = library("module Puma\n  class Server\n    def run = :ran\n  end\nend\n")
    out = fresh_ruby(<<~RUBY)
      module Puma
        autoload :Server, #{server.inspect}
      end
      p [Puma.autoload?(:Server).nil?, Puma::Server.ancestors.include?(ForkSafe::Integrations::Puma::Serving)]
    RUBY
    expect(out).to eq("[false, true]\n")
  end
end
