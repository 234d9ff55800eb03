# frozen_string_literal: true

# Real pitchfork processes (a monitor, a mold, workers, and reforks), real
# clients reading until EOF.
#
# Pitchfork is no Debian package: under the project's own bundle, which has
# none, this file defines nothing. bin/compat runs it in the pitchfork cells
# (and fails a cell whose column is empty).
return unless Support::Versions.installed("pitchfork")

RSpec.describe "pitchfork with forking requests", :e2e, compat: %w[pitchfork] do
  include Support::PitchforkServer

  def start(gem:, env: {}, config: nil, **options)
    start_pitchfork(gem:, env:, config: config.to_s, **options)
  end

  it_behaves_like "a server whose app forks", graceful_stop: :QUIT, features: Support::Versions.pitchfork_features
  it_behaves_like "a preforking server", "pitchfork"

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
    expect(http_get(server.port, "/fork?via=plain&life=#{Support::Stops::ORPHAN_LIFE}", limit: 2).last)
      .to include("forked")
    stop_server(server)
    expect { TCPServer.new("127.0.0.1", server.port).close }.to raise_error(Errno::EADDRINUSE)
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
end
