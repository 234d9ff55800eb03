# frozen_string_literal: true

# Faults around forking requests on real servers with the gem: clients that
# leave early, a worker killed in the middle of a response, children that
# fail. The server keeps serving, leaks no fd, leaves no zombie.
RSpec.describe "faults around forking requests", :e2e do
  servers = {
    "unicorn" => ->(spec) { spec.start_unicorn(workers: 2) },
    "puma" => ->(spec) { spec.start_puma(threads: 4) }
  }

  # {pid => open fds} of the server's processes.
  def fds_of(server)
    family(server.pid).to_h { |pid| [pid, fd_count(pid)] }
  end

  def send_and_leave(server, request)
    socket = TCPSocket.new("127.0.0.1", server.port)
    socket.write(request)
    socket.close
  end

  def expect_still_serving(server)
    expect(http_get(server.port, "/").last).to end_with("hello\n")
  end

  servers.each do |name, start|
    context "on #{name}" do
      it "survives clients that leave before the response or in the middle of an upload" do
        server = start.call(self)
        2.times { http_get(server.port, "/fork?via=plain&life=0.2") } # warm up
        before = fds_of(server)
        10.times do
          send_and_leave(server, "GET /fork?via=plain&life=0.5&hang=0.3 HTTP/1.0\r\n\r\n")
          send_and_leave(server, "POST /fork?via=plain&life=0.5 HTTP/1.1\r\nHost: x\r\n" \
                                 "Content-Length: 100000\r\n\r\n#{"x" * 1000}")
        end
        expect_still_serving(server)
        # Once the app's sleeps and the children are over, no process holds more.
        poll(10, -> { "more fds than #{before}: #{fds_of(server)}" }) do
          fds_of(server).all? { |pid, fds| fds <= before.fetch(pid, fds) }
        end
      end

      %w[raise exit1 kill].each do |child_end|
        it "answers at once and reaps a child that ends with #{child_end}" do
          server = start.call(self)
          seconds, response = http_get(server.port, "/fork?via=plain&life=0.3&end=#{child_end}")
          expect(seconds).to be < 1
          expect(status_of(response)).to eq("200")
          sleep 1
          expect_still_serving(server)
          expect(family(server.pid).flat_map { |pid| children_of(pid).values }).not_to include("Z")
        end
      end
    end
  end

  it "gives EOF at once when unicorn's worker is SIGKILLed mid-response while its child lives" do
    server = start_unicorn(workers: 2)
    client = Thread.new { http_get(server.port, "/fork?via=plain&life=10&hang=30", limit: 12) }
    worker = poll(5, -> { "no worker forked a child" }) do
      children_of(server.pid).keys.find { |pid| children_of(pid).any? }
    end
    killed_at = monotonic
    Process.kill(:KILL, worker)
    seconds, = client.value
    expect(seconds).not_to be_nil
    expect(monotonic - killed_at).to be < 1
  end

  it "gives EOF at once when puma is SIGKILLed mid-response while its child lives" do
    server = start_puma
    client = Thread.new { http_get(server.port, "/fork?via=plain&life=10&hang=30", limit: 12) }
    poll(5, -> { "puma forked no child" }) { children_of(server.pid).any? }
    killed_at = monotonic
    Process.kill(:KILL, server.pid)
    seconds, = client.value
    expect(seconds).not_to be_nil
    expect(monotonic - killed_at).to be < 1
  end
end
