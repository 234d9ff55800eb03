# frozen_string_literal: true

require_relative "http"

module Support
  # Deploys under load: a client that sends requests throughout, each on a
  # fresh connection, while a server replaces its processes; and waiting
  # for the server's new generation.
  module Deploy
    include Http

    # Every fifth request forks a child that lives 2 s, so forks happen
    # while the server's own forks do.
    FORKING = "/fork?via=plain&life=2"
    # What the fixture app answers, by path.
    BODIES = { "/" => /\r\n\r\nhello\n\z/, FORKING => /\r\n\r\nforked \d+\n\z/ }.freeze

    # One request as the client saw it: "ok" (a 200 with the whole body),
    # else what it got instead.
    Request = Struct.new(:path, :outcome, :seconds)

    # Sends requests from a thread from `before` seconds before the block
    # until `after` seconds after it; returns them (Requests).
    def under_load(port, before: 1, after: 1)
      requests = []
      done = false
      client = Thread.new { send_requests(port, requests) { done } }
      sleep before
      yield
      sleep after
      requests
    ensure
      done = true
      client&.join
    end

    # Until the block says done; about 80 a second, so the children (2 s
    # each) stay few on 2 cores.
    def send_requests(port, requests)
      until yield
        requests << request(port, requests.size % 5 == 4 ? FORKING : "/")
        sleep 0.01
      end
    end

    def forking(requests) = requests.count { |request| request.path == FORKING }

    # The requests that did not get their answer, each as "path: outcome".
    def failed(requests)
      requests.reject { |request| request.outcome == "ok" }.map { |request| "#{request.path}: #{request.outcome}" }
    end

    # Polls until the pid file holds a live process other than `old`;
    # returns its pid.
    def wait_for_new_pid(path, old, limit: 30)
      poll(limit, -> { "no new pid in #{path} after #{limit}s" }) do
        pid = File.exist?(path) && File.read(path).strip
        pid = pid && !pid.empty? && Integer(pid)
        pid if pid && pid != old && alive?(pid)
      end
    end

    # Puma's hot restart execs with Bundler::ORIGINAL_ENV, which under
    # `bundle exec rspec` is the environment from before bundle exec: no
    # Gemfile, not the gem's lib on RUBYLIB. Without the BUNDLER_ORIG_
    # variables a server's own environment is its original one, as for
    # `bundle exec puma` run by hand.
    def env_kept_across_exec
      ENV.keys.grep(/\ABUNDLER_ORIG_/).to_h { |name| [name, nil] }
    end

    def alive?(pid)
      Process.kill(0, pid)
      # The state follows the command name, which may hold spaces.
      !File.read("/proc/#{pid}/stat").rpartition(")").last.split.first.start_with?("Z")
    rescue Errno::ESRCH, Errno::ENOENT
      false
    end

    private

    # A request made while a puma master waits for its workers to stop
    # before it execs itself waits with it (see Stops::WORKER_STOP).
    def request(port, path, limit: Stops::WORKER_STOP)
      started = monotonic
      socket = TCPSocket.new("127.0.0.1", port)
      socket.write("GET #{path} HTTP/1.0\r\nHost: localhost\r\n\r\n")
      Request.new(path, outcome(path, *read_until_eof(socket, limit)), monotonic - started)
    rescue SystemCallError => e
      Request.new(path, e.class.name, monotonic - started)
    ensure
      socket&.close
    end

    def outcome(path, seconds, response)
      return "no EOF within the limit" unless seconds
      return "ok" if response.match?(%r{\AHTTP/1\.[01] 200 }) && response.match?(BODIES.fetch(path))

      response.empty? ? "closed with no response" : response.lines.first.chomp
    end
  end
end
