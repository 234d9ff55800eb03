# frozen_string_literal: true

require "open3"
require "rbconfig"
require "tmpdir"

# config.forksafe and Rails.logger, in a Rails app booted in a fresh Ruby
# (a Rails application is one per process).
RSpec.describe "ForkSafe in a Rails app", compat: %w[debian13] do
  let(:lib) { File.expand_path("../lib", __dir__) }

  # Boots an app whose class body runs `config` (after `before`, which may
  # require the gem before Rails), then runs `script`: [output, status].
  def rails_app(config, script, before: "")
    Dir.mktmpdir("forksafe-railtie") do |dir|
      Open3.capture2e(RbConfig.ruby, "-I", lib, "-e", "#{before}\n#{app(config)}\n#{script}", chdir: dir)
    end
  end

  def app(config)
    <<~RUBY
      require "rails"
      require "action_controller/railtie"
      require "unicorn/forksafe"
      class ForkSafeSpecApp < Rails::Application
        config.root = Dir.pwd
        config.eager_load = false
        config.logger = Logger.new(File.expand_path("app.log"))
        #{config}
      end
      Rails.application.initialize!
    RUBY
  end

  it "takes the settings of ForkSafe.configure from config.forksafe, and logs through Rails.logger" do
    out, status = rails_app("config.forksafe.debug = true\nconfig.forksafe.fork_hook = false", <<~RUBY)
      config = ForkSafe.config
      puts [config.debug, config.fork_hook, config.logger.equal?(Rails.logger)].inspect
    RUBY
    expect([out, status.success?]).to eq(["[true, false, true]\n", true])
  end

  it "keeps the logger the app set" do
    out, = rails_app("config.forksafe.logger = Logger.new($stdout, progname: :mine)",
                     "p ForkSafe.config.logger.progname")
    expect(out).to eq(":mine\n")
  end

  it "takes the last setting written, from an initializer too, and follows Rails.logger when it is replaced" do
    out, = rails_app("config.forksafe.debug = true", <<~RUBY)
      Rails.application.config.forksafe.debug = false # as an initializer would
      Rails.logger = Logger.new($stdout, progname: :later)
      p [ForkSafe.config.debug, ForkSafe.config.logger.progname]
      Rails.application.config.forksafe.dbug = true
    RUBY
    expect(out).to start_with("[false, :later]\n")
    expect(out).to include("config.forksafe.dbug: no such setting")
  end

  it "is there when the gem was required before Rails (RUBYOPT, a server's config file)" do
    script = "p [ForkSafe.config.debug, ForkSafe.config.logger.equal?(Rails.logger)]"
    out, = rails_app("config.forksafe.debug = true", script, before: 'require "unicorn/forksafe"')
    expect(out).to eq("[true, true]\n")
  end

  it "names an unknown setting, and a bad value" do
    out, status = rails_app("config.forksafe.dbug = true", "")
    expect(status).not_to be_success
    expect(out).to include("config.forksafe.dbug: no such setting (there are fork_hook, debug, logger) (ArgumentError)")
    out, = rails_app("config.forksafe.debug = 1", "")
    expect(out).to include("debug: must be true or false, got 1 (ArgumentError)")
  end

  it "changes nothing outside Rails: no Railtie, and the default logger" do
    logger = "ForkSafe.config.logger.instance_variable_get(:@logdev).dev"
    out, status = Open3.capture2e(RbConfig.ruby, "-I", lib, "-r", "unicorn/forksafe", "-e",
                                  "p [defined?(ForkSafe::Railtie), #{logger}]")
    expect([out, status.success?]).to eq(["[nil, #<IO:<STDERR>>]\n", true])
  end
end
