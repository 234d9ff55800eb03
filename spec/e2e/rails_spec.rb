# frozen_string_literal: true

require_relative "../support/rails_app"

# A Rails app in production mode (Support::RailsApp), the gem installed from
# its platform .gem, on unicorn and puma; each situation with a twin without
# the gem that shows the wait.
RSpec.describe "a Rails app whose requests fork", :e2e do
  include Support::RailsApp

  # Path => what the client reads: each forks a child living for seconds.
  responses = {
    "/fork" => %r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nforked \d+\n\z}m,
    "/thread_fork" => %r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nforked \d+\n\z}m,
    "/popen" => %r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nforked \d+\n\z}m,
    "/raise_after_fork" => %r{\AHTTP/1\.[01] 500 },
    "/middleware_raise" => %r{\AHTTP/1\.[01] 500 }
  }
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
    orphan_after_stop(server, signal) { rails_get(server, path, 8, limit: 2).last }
  end

  it "runs the gem installed from its platform .gem, not this checkout" do
    lock = File.read(File.join(@templates[true], "Gemfile.lock"))
    expect(lock).to include("unicorn-forksafe (#{ForkSafe::VERSION}-#{Gem::Platform.local})")
    expect(Dir[File.join(@templates[true], "gems/gems/unicorn-forksafe-*/lib/unicorn/forksafe/*/forksafe_native.so")])
      .not_to be_empty
  end

  servers.each do |name, (kind, workers, graceful_stop)|
    context "on #{name}" do
      define_method(:start) { |gem:| start_rails(@templates.fetch(gem), kind, workers:) }

      it "gives EOF at once on every response whose request forked" do
        server = start(gem: true)
        got = responses.keys.to_h { |path| [path, rails_get(server, path, 6)] }
        slow = got.filter_map { |path, (seconds, _)| [path, seconds] unless seconds && seconds < 1 }
        expect(slow).to eq([])
        got.each { |path, (_, response)| expect(response).to match(responses[path]), path }
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

      it "logs each child's pass to log/production.log with config.forksafe.debug, not to the server's output" do
        server = start(gem: true)
        rails_get(server, "/fork", 1)
        log = File.join(server.dir, "log/production.log")
        pass = /forksafe: child \d+ of \d+: neutralized clients \[\d+/
        poll(5, -> { "no pass logged in #{log}:\n#{File.read(log)}" }) { File.read(log)[pass] }
        expect(File.read(server.log)).not_to include("forksafe:")
      end
    end
  end
end
