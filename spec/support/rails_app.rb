# frozen_string_literal: true

require "fileutils"
require "rbconfig"
require "tmpdir"
require "unicorn/forksafe/version"
require_relative "proc_table"
require_relative "servers"

module Support
  # A minimal Rails app in production mode, as a user has it
  # (spec/fixtures/rails_app): its own Gemfile and bundle, resolved offline
  # from the installed gems; the gem installed from the platform .gem that
  # `rake native gem` builds, not this checkout's lib; served by
  # `bundle exec unicorn` or `bundle exec puma`. Its routes fork while a
  # request is in the app, each child living `life` seconds:
  #   /fork              Kernel#fork in the request
  #   /thread_fork       Kernel#fork from a Thread.new
  #   /popen             IO.popen("-")
  #   /raise_after_fork  forks, then raises: Rails' own 500
  #   /middleware_raise  a middleware in front of Rails forks and raises:
  #                      the server's own error path answers
  # With the gem, config.forksafe.debug is on.
  module RailsApp
    include ProcTable
    include Servers

    ROOT = File.expand_path("../..", __dir__)
    FIXTURE = File.join(ROOT, "spec/fixtures/rails_app")
    # What the proxy in front says: production forces SSL (Rails 7.2's
    # default, set here on every version).
    PROXY_HEADERS = { "X-Forwarded-Proto" => "https" }.freeze

    # The platform gem for this Ruby, as fresh as lib/: rake test builds it
    # (rake platform_gem) before RSpec runs.
    def self.platform_gem
      path = File.join(ROOT, "pkg", "unicorn-forksafe-#{ForkSafe::VERSION}-#{Gem::Platform.local}.gem")
      File.exist?(path) or raise "no #{path}: build it with `bundle exec rake platform_gem`"
      newer = Dir[File.join(ROOT, "lib/**/*.rb")].select { |file| File.mtime(file) > File.mtime(path) }
      newer.empty? or raise "#{path} is older than #{newer.first}: rebuild it with `bundle exec rake platform_gem`"
      path
    end

    # Copies the app into a new directory, installs the gem (gem: true) into
    # a GEM_HOME of its own there and resolves the app's bundle. Returns the
    # directory: a template that each server start copies.
    def self.generate(gem:)
      file = platform_gem if gem
      dir = Dir.mktmpdir("forksafe-rails")
      FileUtils.cp_r("#{FIXTURE}/.", dir)
      File.write(File.join(dir, "Gemfile"), gemfile(gem:))
      run(dir, gems(dir), "gem", "install", "--local", "--no-document", "--install-dir", "gems", file) if gem
      run(dir, environment(dir), "bundle", "install", "--local", "--quiet")
      dir
    rescue StandardError
      FileUtils.rm_rf(dir) if dir # not yet the caller's to remove
      raise
    end

    def self.gemfile(gem:)
      <<~GEMFILE
        source "https://rubygems.org"
        gem "actionpack"
        gem "puma"
        gem "railties"
        gem "unicorn"
        #{'gem "unicorn-forksafe", require: "unicorn/forksafe"' if gem}
      GEMFILE
    end

    def self.run(dir, env, *command)
      out = IO.popen(env, command, chdir: dir, err: %i[child out], &:read)
      raise "#{command.join(" ")} failed in the Rails app:\n#{out}" unless Process.last_status.success?
    end

    # The app's own bundle, not this project's (whose RSpec runs under
    # bundle exec).
    def self.environment(dir)
      gems(dir).merge("BUNDLE_GEMFILE" => File.join(dir, "Gemfile"), "RAILS_ENV" => "production",
                      "SECRET_KEY_BASE" => "0" * 128)
    end

    # No bundle at all (bundle exec's variables gone), the gems installed
    # for the app first on the gem path.
    def self.gems(dir)
      ENV.keys.grep(/\ABUNDLER?_|\ARUBYOPT\z/).to_h { |name| [name, nil] }
         .merge("GEM_HOME" => File.join(dir, "gems"),
                "GEM_PATH" => [File.join(dir, "gems"), *Gem.default_path].join(File::PATH_SEPARATOR))
    end

    # Serves a copy of the template: unicorn with `workers` workers, which
    # load the app first in the master (preload_app, the default here) or
    # each in itself, after more lines of unicorn.rb (`unicorn_config`);
    # or puma in single mode (workers 0) or cluster mode.
    def start_rails(template, server, workers:, preload: true, unicorn_config: "")
      dir = Dir.mktmpdir("forksafe-e2e")
      FileUtils.cp_r("#{template}/.", dir)
      File.write(File.join(dir, "config/unicorn.rb"),
                 "worker_processes #{workers}\npreload_app #{preload}\n#{unicorn_config}\n")
      port = free_port
      started = start_server(dir, port, gem: File.directory?(File.join(dir, "gems")), command: [], lib: nil,
                                        program: ["bundle", "exec", *server_command(server, workers, port),
                                                  "config.ru"], env: RailsApp.environment(dir))
      wait_for_workers(started, server, workers)
      started
    end

    # The native libraries the server's master and workers have mapped.
    def native_libraries(server)
      family(server.pid).flat_map do |pid|
        File.readlines("/proc/#{pid}/maps").filter_map { |line| line[%r{/\S*forksafe_native\.so}] }
      rescue Errno::ENOENT, Errno::ESRCH # gone meanwhile
        []
      end.uniq
    end

    # A request through the proxy's headers: [seconds to EOF, response].
    def rails_get(server, path, life, limit: 15)
      http_get(server.port, "#{path}?life=#{life}", limit:, headers: PROXY_HEADERS)
    end

    private

    def server_command(server, workers, port)
      return %W[puma -e production -t 2:2 -w #{workers} -b tcp://127.0.0.1:#{port}] if server == :puma

      %W[unicorn -E production -c config/unicorn.rb -l 127.0.0.1:#{port}]
    end

    # The master listens before its workers have loaded the app (unicorn
    # without preload_app, puma's cluster): a request then waits for a boot.
    # And a puma worker that gets TERM while it boots can hang in its
    # shutdown (puma 6.6 on Ruby 3.3, with or without the gem).
    def wait_for_workers(server, kind, workers)
      if kind == :unicorn
        wait_for_log(server, /worker=\d+ ready/, workers)
      elsif workers.positive?
        wait_for_log(server, /booted/, workers)
      end
    end
  end
end
