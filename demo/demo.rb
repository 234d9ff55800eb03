# frozen_string_literal: true

# The hang and the fix side by side (bin/demo). Real unicorn, puma and nginx
# processes serve an app that forks a long-lived child, once without the gem
# and once with it; a client reads each response until EOF, as nginx does.
# Prints one table and writes it as Markdown.
require "optparse"
require "socket"
require "timeout"
require "fileutils"
require_relative "../spec/support/servers"
require_relative "../spec/support/nginx"
require_relative "situations"

# The test suite's server harness; one per thread, as it keeps the list of
# the servers it started.
class Harness
  include Support::Servers
  include Support::Nginx

  def cleanup
    stop_servers
    close_tracked
  end
end

# Runs the situations of each server in order, the servers and the two
# variants in parallel threads: the demo takes as long as the slowest server.
class Run
  def initialize(situations, chosen)
    @situations = situations
    @chosen = chosen
    @results = {}
    @lock = Mutex.new
    @started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  end

  # {[row, gem] => Outcome}
  def call
    @chosen.group_by { |_, server,| server }.values.product([false, true])
           .map { |rows, gem| Thread.new { run_rows(rows, gem) } }.each(&:join)
    @results
  end

  private

  def run_rows(rows, gem)
    harness = Harness.new
    rows.each do |row|
      outcome = @situations.public_send(row.last, harness, gem)
      harness.cleanup
      record(row, gem, outcome)
    end
  ensure
    harness.cleanup
  end

  def record(row, gem, outcome)
    @lock.synchronize do
      @results[[row, gem]] = outcome
      puts format("[%<s>5.1fs] %<server>-8s %<name>-40s %<variant>-16s %<text>s",
                  s: Process.clock_gettime(Process::CLOCK_MONOTONIC) - @started, server: row[1], name: row[0],
                  variant: gem ? "with the gem:" : "without the gem:", text: outcome.text)
    end
  end
end

SERVERS = %w[unicorn puma nginx].freeze
USAGE = <<~TEXT
  Usage: bin/demo [options]

  Starts real servers with an app that forks a child living LIFE seconds,
  without the gem and with it, runs each situation of the problem (normal
  and error responses, a worker killed by unicorn's timeout, an orphan
  holding the port, a threaded neighbour, a child writing into its
  inherited connections) and prints what the client saw. Exits non-zero
  if any situation shows the problem with the gem.

TEXT

def option_parser(opts)
  OptionParser.new(USAGE) do |parser|
    parser.on("--server NAME", SERVERS, "only this server: #{SERVERS.join(", ")} (repeatable)") { opts[:servers] << _1 }
    parser.on("--life SECONDS", Float, "how long each forked child lives (default 6, at least 3)") do |life|
      raise OptionParser::InvalidArgument, "#{life} (at least 3 seconds)" if life < 3

      opts[:life] = life
    end
    parser.on("--markdown FILE", "where to write the table (default tmp/demo.md)") { opts[:markdown] = _1 }
  end
end

def options
  opts = { servers: [], life: 6, markdown: File.expand_path("../tmp/demo.md", __dir__) }
  option_parser(opts).parse!
  opts.merge(servers: opts[:servers].empty? ? SERVERS : opts[:servers])
rescue OptionParser::ParseError => e
  abort "bin/demo: #{e.message} (see bin/demo --help)"
end

def verdict(without, with)
  return "FAIL" if with.problem
  return "fixed" if without.problem

  "not affected"
end

def table(chosen, results)
  rows = chosen.map do |row|
    name, server, = row
    without, with = results.values_at([row, false], [row, true])
    [name, server == "nginx" ? "nginx -> unicorn (Unix socket)" : server, without.text, with.text,
     verdict(without, with)]
  end
  ["| situation | server | without the gem | with the gem | verdict |", "|---|---|---|---|---|",
   *rows.map { |row| "| #{row.join(" | ")} |" }]
end

opts = options
chosen = Situations::ALL.select { |_, server,| opts[:servers].include?(server) }
puts "bin/demo: #{chosen.size} situations on #{opts[:servers].join(", ")}, each child living #{opts[:life]} s"
results = Run.new(Situations.new(opts[:life]), chosen).call
lines = table(chosen, results)
puts "", *lines
FileUtils.mkdir_p(File.dirname(opts[:markdown]))
File.write(opts[:markdown], "#{lines.join("\n")}\n")
puts "", "Written to #{opts[:markdown]}"
exit(results.none? { |(_, gem), outcome| gem && outcome.problem })
