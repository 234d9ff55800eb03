# frozen_string_literal: true

# Hello-world throughput under wrk, with and without the gem: unicorn (2
# workers) and puma (4 threads), both servers of a pair up at once and
# measured in alternating rounds (each going first in turn), so the
# machine's noise hits both alike.
# The figures are the median rounds; the ratio is the median of each
# round's with / without, the two measured back to back. Each server
# the bundle has is measured, at its version: run it under a cell's gemfile
# (gemfiles/) for another version.
#
#   ruby -Ilib bench/throughput.rb [ROUNDS] [SECONDS_PER_ROUND] [CONNECTIONS]
require "socket"
require "timeout"
require_relative "../spec/support/servers"
require_relative "../spec/support/versions"

rounds = Integer(ARGV[0] || 5)
seconds = Integer(ARGV[1] || 3)
connections = Integer(ARGV[2] || 8)

# The test suite's server harness: real servers in their own process groups.
class Harness
  include Support::Servers
end

def requests_per_second(port, seconds, connections)
  out = IO.popen(["wrk", "-t", "2", "-c", connections.to_s, "-d", "#{seconds}s",
                  "http://127.0.0.1:#{port}/"], &:read)
  Float(out[%r{^Requests/sec:\s*([\d.]+)}, 1] || raise("wrk printed no rate:\n#{out}"))
end

def median(values) = values.sort[values.size / 2]

SERVERS = {
  "unicorn" => ["2 workers", ->(harness, gem) { harness.start_unicorn(gem:, workers: 2) }],
  "puma" => ["4 threads", ->(harness, gem) { harness.start_puma(gem:, threads: 4) }]
}.freeze

harness = Harness.new
puts "| server | without the gem | with the gem | ratio |"
puts "|---|---:|---:|---:|"
begin
  SERVERS.each do |gem_name, (setup, start)|
    name = "#{Support::Versions.installed(gem_name) || next} (#{setup})"
    pair = { without: start.call(harness, false), with: start.call(harness, true) }
    pair.each_value { |server| requests_per_second(server.port, 1, connections) } # warm up
    rates = { without: [], with: [] }
    rounds.times do |round|
      order = round.even? ? pair.to_a : pair.to_a.reverse # neither always runs first
      order.each { |variant, server| rates[variant] << requests_per_second(server.port, seconds, connections) }
    end
    without, with = rates.values_at(:without, :with).map { |r| median(r) }
    ratio = median(rates[:with].zip(rates[:without]).map { |w, wo| w / wo })
    puts format("| %<name>s | %<without>.0f req/s | %<with>.0f req/s | %<ratio>.3f |", name:, without:, with:, ratio:)
    harness.stop_servers
  end
ensure
  harness.stop_servers
end
