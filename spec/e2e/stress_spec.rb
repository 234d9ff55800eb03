# frozen_string_literal: true

# Real servers with the gem under concurrent load, every request of a mix
# that forks in each way the gem knows (and fails after forking): nothing
# lost, nothing leaked, no zombie, no growth. `rspec --tag stress` runs it
# alone.
RSpec.describe "servers under load", :e2e, :stress do
  # path => the status it answers with. Children outlive the 1 s within
  # which each client must see EOF.
  MIX = {
    "/fork?via=detach&life=1.5" => "200",
    "/fork?via=plain&life=1.5" => "200",
    "/fork?via=forksafe&life=1.5&raise=1" => "500",
    "/" => "200"
  }.freeze

  # `count` requests from `clients` threads, cycling through MIX:
  # [[path, seconds to EOF, response]].
  def load(server, count, clients: 8)
    threads = Array.new(clients) do |first|
      Thread.new do
        (first...count).step(clients).map do |i|
          path = MIX.keys[i % MIX.size]
          [path, *http_get(server.port, path, limit: 5)]
        end
      end
    end
    threads.flat_map(&:value)
  end

  # The server's processes: the master or single process, and its workers.
  def serving(server)
    [server.pid, *children_of(server.pid).keys].sort
  end

  def complete?(path, response)
    status_of(response) == MIX[path] && response.match?(%r{\AHTTP/1\.[01] \d{3} .*\r\n\r\n}m) &&
      (MIX[path] == "500" || response.end_with?("\n"))
  end

  def expect_steady_under_load(server)
    load(server, 40) # warm up: lazy loading, thread pools, the first forks
    sleep 2 # every child of the warm-up has exited
    pids = serving(server)
    fds = pids.to_h { |pid| [pid, fd_count(pid)] }
    rss = pids.to_h { |pid| [pid, rss_kb(pid)] }

    results = load(server, 500)
    slow = results.reject { |_, seconds,| seconds && seconds < 1 }
    incomplete = results.reject { |path, _, response| complete?(path, response) }
    expect([slow, incomplete]).to eq([[], []])

    sleep 2
    expect(serving(server)).to eq(pids)
    expect(pids.to_h { |pid| [pid, fd_count(pid)] }).to eq(fds)
    expect(pids.flat_map { |pid| children_of(pid).values }).not_to include("Z")
    pids.each { |pid| expect(rss_kb(pid) - rss[pid]).to be < 16_384, "pid #{pid} grew from #{rss[pid]} kB" }
  end

  it "unicorn with 2 workers" do
    expect_steady_under_load(start_unicorn(workers: 2))
  end

  it "puma with 4 threads" do
    expect_steady_under_load(start_puma(threads: 4))
  end
end
