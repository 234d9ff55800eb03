# frozen_string_literal: true

# Real puma processes, real clients reading until EOF.
RSpec.describe "puma with forking requests", :e2e do
  def start(gem:, env: {}, config: nil)
    start_puma(gem:, env:, config:)
  end

  it_behaves_like "a server whose app forks", graceful_stop: :TERM, features: Support::Versions.puma_features

  # The neighbour's and the forker's [seconds, response], the forked child
  # living `life` seconds and writing into every inherited socket.
  def neighbour_and_prying_forker(server, via, life: 6)
    neighbour_and_forker(server.port, "/fork?via=#{via}&life=#{life}&pry=1")
  end

  %w[forksafe plain].each do |via|
    it "gives an in-flight neighbour its EOF right after its response (#{via} fork)" do
      server = start_puma(threads: 2)
      (neighbour_seconds, neighbour_response), (forker_seconds, forker_response) =
        neighbour_and_prying_forker(server, via)
      expect(neighbour_seconds).to be < 2.5
      expect(neighbour_response).to match(%r{\AHTTP/1\.[01] 200}).and end_with("slow done\n")
      expect(forker_seconds).to be < 1
      expect(forker_response).to match(%r{\AHTTP/1\.[01] 200}).and include("forked")
      expect(neighbour_response + forker_response).not_to include("LEAKED")
    end
  end

  it "keeps a persistent HTTP/1.1 connection across requests, forking ones included" do
    server = start_puma
    socket = track(TCPSocket.new("127.0.0.1", server.port))
    paths = ["/", "/fork?via=native&life=6", "/fork?via=plain&life=6", "/"]
    responses = paths.map { |path| keep_alive_get(socket, path) }
    expect(responses.map { |response| response[0, 15] }).to all(eq("HTTP/1.1 200 OK"))
    expect(responses.last).to end_with("hello\n")
    expect(socket.wait_readable(0.2)).to be_nil # still open, nothing more to read
  end

  it "keeps serving in cluster mode after many forking requests: worker spawns keep the listener" do
    server = start_puma(threads: 2, workers: 2)
    statuses = forking_statuses(server, 20)
    expect(statuses).to all(eq("200"))
  end

  it "keeps serving after fork_worker reforks: worker 0's forks keep the listener" do
    server = start_puma(threads: 2, workers: 2, options: ["--fork-worker"])
    booted = wait_for_log(server, /booted/, 2)
    Process.kill(:URG, server.pid) # refork: worker 0 forks worker 1 anew
    wait_for_log(server, /booted/, booted + 1)
    expect(forking_statuses(server, 10)).to all(eq("200"))
    seconds, response = http_get(server.port, "/fork?via=plain&life=6&raise=1")
    expect(seconds).to be < 1
    expect(response).to match(%r{\AHTTP/1\.[01] 500 })
  end

  it "installs when the gem is loaded before puma (puma's classes load later, some by autoload)" do
    server = start_puma(gem: false, env: { "RUBYOPT" => "-runicorn/forksafe" })
    error, hijack = %w[/fork /hijack].map { |path| http_get(server.port, "#{path}?via=native&life=6&raise=1") }
    expect([error.first, hijack.first]).to all(be < 1)
    expect([error.last, hijack.last]).to match([match(%r{\AHTTP/1\.[01] 500 }), end_with("hijacked\n")])
    expect(File.read(server.log)).not_to include("has no")
  end

  it "keeps serving in cluster mode with a control app when the gem is loaded before puma" do
    control = ["--control-url", "tcp://127.0.0.1:#{free_port}", "--control-token", "secret"]
    server = start_puma(gem: false, workers: 2, env: { "RUBYOPT" => "-runicorn/forksafe" }, options: control)
    expect(forking_statuses(server, 6)).to all(eq("200"))
    expect(File.read(server.log)).not_to include("has no")
  end

  it "without the gem, the neighbour waits for the child or gets its bytes" do
    server = start_puma(gem: false, threads: 2)
    (neighbour_seconds, neighbour_response), (forker_seconds,) = neighbour_and_prying_forker(server, "plain", life: 4)
    expect(forker_seconds).to be > 3.5
    expect(neighbour_seconds > 3.5 || neighbour_response.include?("LEAKED")).to be(true)
  end
end
