# frozen_string_literal: true

require_relative "../support/rails_app"

# A Rails app in production mode (Support::RailsApp), the gem installed from
# its platform .gem, on unicorn and puma; each situation with a twin without
# the gem that shows the wait.
RSpec.describe "a Rails app whose requests fork", :e2e, compat: %w[debian13] do
  include Support::RailsApp

  # Path => what the client reads: each forks a child living for seconds.
  let(:responses) do
    { "/fork" => %r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nforked \d+\n\z}m,
      "/thread_fork" => %r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nforked \d+\n\z}m,
      "/popen" => %r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nforked \d+\n\z}m,
      "/raise_after_fork" => %r{\AHTTP/1\.[01] 500 },
      "/middleware_raise" => %r{\AHTTP/1\.[01] 500 } }
  end
  servers = {
    "unicorn with 2 preloaded workers" => [:unicorn, 2, :QUIT],
    "puma in single mode" => [:puma, 0, :TERM],
    "puma with 2 workers" => [:puma, 2, :TERM]
  }

  # Both apps are generated once: a bundle resolves in seconds.
  before(:context) { @templates = { true => Support::RailsApp.generate(gem: true) } }
  before(:context) { @templates[false] = Support::RailsApp.generate(gem: false) }
  after(:context) { @templates&.each_value { |dir| FileUtils.rm_rf(dir) } }

  # The port after a graceful stop while the child of `path` lives. Without
  # the gem the child holds the connection too: what came in two seconds is
  # the response.
  def port_after_stop(server, signal, path)
    orphan_after_stop(server, signal) { rails_get(server, path, Support::Stops::ORPHAN_LIFE, limit: 2).last }
  end

  it "runs the gem installed from its platform .gem, not this checkout" do
    lock = File.read(File.join(@templates[true], "Gemfile.lock"))
    expect(lock).to include("unicorn-forksafe (#{ForkSafe::VERSION}-#{Gem::Platform.local})")
    server = start_rails(@templates[true], :unicorn, workers: 1)
    expect(native_libraries(server)).to match([start_with(File.join(server.dir, "gems/gems/unicorn-forksafe-"))])
  end

  # What each response's client got, and the pass lines in
  # log/production.log after them.
  def forking_responses(server)
    got = responses.keys.to_h { |path| [path, rails_get(server, path, 6)] }
    log = File.join(server.dir, "log/production.log")
    pass = /forksafe: child \d+ of \d+: neutralized clients \[\d+/
    [got, poll(5, -> { "no pass logged in #{log}:\n#{File.read(log)}" }) { File.read(log).scan(pass).size }]
  end

  def expect_eof_at_once(got)
    slow = got.filter_map { |path, (seconds, _)| [path, seconds] unless seconds && seconds < 1 }
    expect(slow).to eq([])
    got.each { |path, (_, response)| expect(response).to match(responses[path]), path }
  end

  # Unicorn's default: each worker loads the app after it starts serving;
  # the gem, required from unicorn's config file, was loaded before Rails.
  it "works on unicorn without preload_app, the gem required from unicorn's config file before Rails" do
    server = start_rails(@templates[true], :unicorn, workers: 2, preload: false,
                                                     unicorn_config: 'require "unicorn/forksafe"')
    got, passes = forking_responses(server)
    expect_eof_at_once(got)
    expect(passes).to be_positive
  end

  servers.each do |name, (kind, workers, graceful_stop)|
    context "on #{name}" do
      define_method(:start) { |gem:| start_rails(@templates.fetch(gem), kind, workers:) }

      it "gives EOF at once on every response whose request forked, and logs the passes to log/production.log" do
        server = start(gem: true)
        got, passes = forking_responses(server)
        expect_eof_at_once(got)
        expect(passes).to be_positive
        expect(File.read(server.log)).not_to include("forksafe:") # the server's output
      end

      it "without the gem, keeps the client of some response waiting for the child" do
        server = start(gem: false)
        seconds = responses.keys.map { |path| rails_get(server, path, 3).first }
        expect(seconds.max).to be > 2.5
      end

      it "frees the port at a graceful stop while a child forked in a request lives" do
        expect(port_after_stop(start(gem: true), graceful_stop, "/fork")).to eq(:port_free)
      end

      it "without the gem, leaves the child holding the port after a graceful stop" do
        expect(port_after_stop(start(gem: false), graceful_stop, "/fork")).to eq(:port_held)
      end
    end
  end
end
