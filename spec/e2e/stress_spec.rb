# frozen_string_literal: true

# Real servers with the gem under concurrent load, every request of a mix
# that forks in each way the gem knows (and fails after forking): nothing
# lost, nothing leaked, no zombie, no growth. `rspec --tag stress` runs it
# alone.
RSpec.describe "servers under load", :e2e, :stress do
  # path => the status it answers with. Children outlive the 1 s within
  # which each client must see EOF.
  def mix
    { "/fork?via=detach&life=1.5" => "200",
      "/fork?via=plain&life=1.5" => "200",
      "/fork?via=forksafe&life=1.5&raise=1" => "500",
      "/" => "200" }
  end

  # `count` requests from `clients` threads, cycling through the mix:
  # [[path, seconds to EOF, response]].
  def load(server, count, clients: 8)
    paths = mix.keys.cycle.first(count)
    threads = Array.new(clients) do |first|
      mine = paths.drop(first).each_slice(clients).map(&:first)
      Thread.new { mine.map { |path| [path, *http_get(server.port, path, limit: 5)] } }
    end
    threads.flat_map(&:value)
  end

  # The server's processes (master or single process, and its workers):
  # {pid => [open fds, resident kB]}.
  def state(server)
    family(server.pid).to_h { |pid| [pid, [fd_count(pid), rss_kb(pid)]] }
  end

  def answered?(path, seconds, response)
    seconds && seconds < 1 && status_of(response) == mix[path] &&
      response.match?(%r{\AHTTP/1\.[01] \d{3} .*\r\n\r\n}m) && (mix[path] == "500" || response.end_with?("\n"))
  end

  # No process holds more fds (fewer is unicorn: a worker closes the pipes
  # of the workers spawned before it when GC finalizes them).
  def expect_no_more_fds(before, after)
    expect(after.select { |pid, (fds, _)| fds > before[pid].first }).to eq({}), "before: #{before}"
  end

  def expect_no_growth(before, after, limit_kb: 16_384)
    growth = after.to_h { |pid, (_, rss)| [pid, rss - before.fetch(pid).last] }
    expect(growth.values).to all(be < limit_kb), growth.inspect
  end

  def expect_no_zombies(pids)
    expect(pids.flat_map { |pid| children_of(pid).values }).not_to include("Z")
  end

  def expect_steady_under_load(server)
    load(server, 40) # warm up: lazy loading, thread pools, the first forks
    sleep 2 # every child of the warm-up has exited
    before = state(server)
    expect(load(server, 500).reject { |result| answered?(*result) }).to eq([])
    sleep 2
    expect_steady(before, state(server))
  end

  def expect_steady(before, after)
    expect(after.keys).to eq(before.keys) # no process died or appeared
    expect_no_more_fds(before, after)
    expect_no_growth(before, after)
    expect_no_zombies(before.keys)
  end

  it "unicorn with 2 workers" do
    expect_steady_under_load(start_unicorn(workers: 2))
  end

  it "puma with 4 threads" do
    expect_steady_under_load(start_puma(threads: 4))
  end
end
