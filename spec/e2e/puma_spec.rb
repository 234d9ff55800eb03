# frozen_string_literal: true

# Real puma 5.6 processes, real clients reading until EOF.
RSpec.describe "puma with forking requests", :e2e do
  forks = {
    "ForkSafe.fork" => "via=forksafe",
    "Kernel#fork" => "via=plain",
    "a fork the hook does not see" => "via=plain&hook=off" # the parent's shutdown alone
  }

  # The normal, error, hijacked and response-hijacked responses of one kind
  # of fork, each while the child lives six seconds.
  def four_responses(server, query)
    %w[/fork?%s /fork?%s&raise=1 /hijack?%s /response_hijack?%s]
      .map { |path| http_get(server.port, "#{format(path, query)}&life=6") }
  end

  def expect_four_responses(responses)
    expect(responses.map(&:first)).to all(be < 1)
    normal, error, *hijacked = responses.map(&:last)
    expect(normal).to match(%r{\AHTTP/1\.0 200 OK\r\n.*\r\n\r\nforked \d+\n\z}m)
    expect(error).to match(%r{\AHTTP/1\.0 500 Internal Server Error\r\n.*\r\n\r\n[^\r]*\z}m)
    expect_hijacked(*hijacked)
  end

  # The neighbour's and the forker's [seconds, response], the forked child
  # living `life` seconds and writing into every inherited socket.
  def neighbour_and_prying_forker(server, via, life: 6)
    neighbour_and_forker(server.port, "/fork?via=#{via}&life=#{life}&pry=1")
  end

  forks.each do |name, query|
    it "gives EOF at once on normal, error and both hijacked responses when the app forks with #{name}" do
      expect_four_responses(four_responses(start_puma, query))
    end
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
    paths = ["/", "/fork?#{forks.fetch("a fork the hook does not see")}&life=6", "/fork?via=plain&life=6", "/"]
    responses = paths.map { |path| keep_alive_get(socket, path) }
    expect(responses.map { |response| response[0, 15] }).to all(eq("HTTP/1.1 200 OK"))
    expect(responses.last).to end_with("hello\n")
    expect(socket.wait_readable(0.2)).to be_nil # still open, nothing more to read
  end

  it "lets a child answer on a connection handed off with keep:" do
    server = start_puma
    seconds, response = http_get(server.port, "/handoff")
    expect(response).to eq("HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nfrom the child\n")
    expect(seconds).to be_between(0.4, 3)
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
    expect_four_responses(four_responses(server, forks.fetch("Kernel#fork")))
  end

  it "installs when the gem is loaded before puma (puma's classes load later, some by autoload)" do
    server = start_puma(gem: false, env: { "RUBYOPT" => "-runicorn/forksafe" })
    expect_four_responses(four_responses(server, forks.fetch("a fork the hook does not see")))
  end

  it "without the gem, the neighbour waits for the child or gets its bytes" do
    server = start_puma(gem: false, threads: 2)
    (neighbour_seconds, neighbour_response), (forker_seconds,) = neighbour_and_prying_forker(server, "plain", life: 4)
    expect(forker_seconds).to be > 3.5
    expect(neighbour_seconds > 3.5 || neighbour_response.include?("LEAKED")).to be(true)
  end
end
