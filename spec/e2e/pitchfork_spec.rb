# frozen_string_literal: true

# Real pitchfork processes (a monitor, a mold, workers, and reforks), real
# clients reading until EOF.
#
# Pitchfork is no Debian package: under the project's own bundle, which has
# none, this file defines nothing. bin/compat runs it in the pitchfork cells
# (and fails a cell whose column is empty).
return unless Support::Versions.installed("pitchfork")

RSpec.describe "pitchfork with forking requests", :e2e do
  include Support::PitchforkServer

  def start(gem:, env: {}, config: nil, **options)
    start_pitchfork(gem:, env:, config: config.to_s, **options)
  end

  it_behaves_like "a server whose app forks", graceful_stop: :QUIT, features: Support::Versions.pitchfork_features

  # A server whose worker 0 has made a new mold after three requests, and
  # whose worker 0 of that new generation, forked by the new mold, is
  # the one that serves now; the first three requests fork too.
  def reforked(gem:)
    server = start_pitchfork(gem:, config: "refork_after [3, false]")
    statuses = Array.new(3) { status_of(http_get(server.port, "/fork?via=plain&life=2").last) }
    expect(statuses).to all(eq("200"))
    wait_for_log(server, /worker=0 gen=1 pid=\d+ ready/, 1)
    wait_for_log(server, /worker=0 gen=0 pid=\d+ reaped/, 1)
    server
  end

  it "gives EOF at once in a reforked worker, and frees the port at a graceful stop while its orphan lives" do
    server = reforked(gem: true)
    error, hijack, normal = ["/fork?via=native&raise=1", "/hijack?via=native", "/fork?via=plain"]
                            .map { |path| http_get(server.port, "#{path}&life=6") }
    expect([error, hijack, normal].map(&:first)).to all(be < 1)
    expect([error, hijack, normal].map(&:last)).to match([start_with("HTTP/1.1 500"), end_with("hijacked\n"),
                                                          include("forked")])
    expect(forking_statuses(server, 6)).to all(eq("200")) # the new mold's fork kept the listener
    expect(http_get(server.port, "/fork?via=plain&life=8", limit: 2).last).to include("forked")
    stop_server(server)
    expect { TCPServer.new("127.0.0.1", server.port).close }.not_to raise_error
  end

  it "without the gem, keeps the client waiting in a reforked worker, and leaves its orphan holding the port" do
    server = reforked(gem: false)
    seconds, response = http_get(server.port, "/fork?via=native&raise=1&life=3")
    expect(seconds).to be > 2.5
    expect(response).to start_with("HTTP/1.1 500")
    expect(http_get(server.port, "/fork?via=plain&life=8", limit: 2).last).to include("forked")
    stop_server(server)
    expect { TCPServer.new("127.0.0.1", server.port).close }.to raise_error(Errno::EADDRINUSE)
  end

  %w[forksafe plain].each do |via|
    it "gives the client EOF when a timed-out worker exits, not when the child exits (#{via} fork)" do
      server = start_pitchfork(timeout: 3)
      seconds, = http_get(server.port, "/fork?via=#{via}&life=12&hang=60", limit: 15)
      expect(seconds).to be_between(2.5, 3 + 3)
    end
  end

  it "without the gem, leaves the client waiting for the child after a timed-out worker exits" do
    server = start_pitchfork(gem: false, timeout: 3)
    seconds, = http_get(server.port, "/fork?via=plain&life=9&hang=60", limit: 15)
    expect(seconds).to be > 8
  end

  it "keeps serving after many forking requests: the mold's worker spawns keep the listener" do
    server = start_pitchfork(workers: 2)
    statuses = forking_statuses(server, 20)
    Process.kill(:TTOU, server.pid) # drop a worker, then the mold forks one anew
    Process.kill(:TTIN, server.pid)
    sleep 1
    statuses += Array.new(10) { status_of(http_get(server.port, "/").last) }
    expect(statuses).to all(eq("200"))
  end

  it "installs when the gem is loaded before pitchfork, in the monitor too" do
    server = start_pitchfork(gem: false, env: { "RUBYOPT" => "-runicorn/forksafe" })
    paths = %w[/fork /hijack]
    paths << "/stream" if Support::Versions.pitchfork_features.include?(:streaming_body)
    results = paths.map { |path| http_get(server.port, "#{path}?via=native&life=6&raise=1") }
    expect(results.map(&:first)).to all(be < 1)
    expect(results.first.last).to start_with("HTTP/1.1 500")
    expect(File.read(server.log)).not_to include("has no")
  end

  it "logs each child's pass through pitchfork's logger" do
    server = start_pitchfork(config: 'logger Logger.new(File.expand_path("app.log"))',
                             env: { "FORKSAFE_DEBUG" => "1" })
    http_get(server.port, "/fork?via=plain&life=2")
    sleep 0.5
    log = File.read(File.join(server.dir, "app.log"))
    expect(log).to match(/forksafe: child \d+ of \d+: neutralized clients \[\d+/)
  end
end
