# frozen_string_literal: true

# Real puma 5.6 processes, real clients reading until EOF.
RSpec.describe "puma with forking requests", :e2e do
  # A neighbour request in flight on the other thread while the app forks a
  # child that lives `life` seconds and writes into every inherited socket.
  def neighbour_and_forker(server, via, life: 6)
    neighbour = Thread.new { http_get(server.port, "/slow?s=1") }
    sleep 0.3 # the neighbour is inside the app now
    forker = http_get(server.port, "/fork?via=#{via}&life=#{life}&pry=1")
    [neighbour.value, forker]
  end

  %w[forksafe plain].each do |via|
    it "gives an in-flight neighbour its EOF right after its response (#{via} fork)" do
      server = start_puma(threads: 2)
      (neighbour_seconds, neighbour_response), (forker_seconds, forker_response) =
        neighbour_and_forker(server, via)
      expect(neighbour_seconds).to be < 2.5
      expect(neighbour_response).to match(%r{\AHTTP/1\.[01] 200}).and end_with("slow done\n")
      expect(forker_seconds).to be < 1
      expect(forker_response).to match(%r{\AHTTP/1\.[01] 200}).and include("forked")
      expect(neighbour_response + forker_response).not_to include("LEAKED")
    end
  end

  it "keeps serving in cluster mode after many forking requests: worker spawns keep the listener" do
    server = start_puma(threads: 2, workers: 2)
    statuses = forking_statuses(server, 20)
    expect(statuses).to all(eq("200"))
  end

  it "without the gem, the neighbour waits for the child or gets its bytes" do
    server = start_puma(gem: false, threads: 2)
    (neighbour_seconds, neighbour_response), (forker_seconds,) = neighbour_and_forker(server, "plain", life: 4)
    expect(forker_seconds).to be > 3.5
    expect(neighbour_seconds > 3.5 || neighbour_response.include?("LEAKED")).to be(true)
  end
end
