# frozen_string_literal: true

# Real Passenger Standalone processes (the builtin engine: Passenger's core
# takes the client's HTTP and speaks its own protocol to one app process),
# real clients reading until EOF, under smart spawning (a preloader loads
# the app and forks the app process) and direct spawning.
#
# Passenger ends a connection with a shutdown before its close, so on its
# own paths the client's EOF never waited for a child, gem or not: the
# shared contract's twins of those paths do not apply, nor its graceful
# stop (Passenger's core stands between the client and the app, and kills
# the app's process group, orphans included, when it stops). What the gem
# changes: a connection the app closes itself (a hijack), the connections a
# child can still write into, and the app process's listener, which an
# orphan kept once the app process had exited.
RSpec.describe "Passenger with forking requests", :e2e, compat: %w[passenger] do
  forks = { "ForkSafe.fork" => "via=forksafe", "Kernel#fork" => "via=plain", "fork(2) from C" => "via=native" }
  forked = %r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nforked (\d+)\n\z}m
  streamed = /\AHTTP.*\r\n\r\nstreamed\n\z/m
  # An app that raises writes nothing: the core answers 502.
  own_paths = { "a response" => ["/fork?%s", forked],
                "an error response" => ["/fork?%s&raise=1", %r{\AHTTP/1\.[01] 5}] }
  hijacks = { "a full hijack" => ["/hijack?%s", /\AHTTP.*\r\n\r\nhijacked\n\z/m],
              "a response hijack" => ["/response_hijack?%s", streamed] }

  def get(server, path, query, life)
    http_get(server.port, "#{format(path, query)}&life=#{life}")
  end

  # The neighbour's and the forker's [seconds, response]: the neighbour on
  # the app process's own HTTP port, served by its other thread, while the
  # forker's request comes through the core and its child, living `life`
  # seconds, writes into every socket it inherited.
  def neighbour_and_prying_forker(server, via, life: 6)
    port, _, headers = passenger_app(server)
    neighbour = Thread.new { neighbour_get(port, headers) }
    sleep 0.3 # the neighbour is inside the app now
    forker = http_get(server.port, "/fork?via=#{via}&life=#{life}&pry=1")
    [neighbour.value, forker]
  end

  # Passenger keeps a connection to that port alive whatever the client
  # asks: the response ends where its Content-Length says.
  def neighbour_get(port, headers)
    socket = track(TCPSocket.new("127.0.0.1", port))
    socket.write("GET /slow?s=1 HTTP/1.0\r\n#{headers.map { |name, value| "#{name}: #{value}\r\n" }.join}\r\n")
    started = monotonic
    response = +""
    Timeout.timeout(10) { response << socket.readpartial(65_536) until complete?(response) }
    [monotonic - started, response]
  end

  # Without the gem the child holds the connection too: what came in two
  # seconds is the response.
  def orphan_request(server, query)
    http_get(server.port, "/fork?#{query}&life=8", limit: 2).last
  end

  %w[smart direct].each do |spawn_method|
    context "with --spawn-method #{spawn_method}" do
      define_method(:start) { |gem: true| start_passenger(gem:, spawn_method:) }

      it "starts the app, which answers 200" do
        seconds, response = http_get(start.port, "/")
        expect(response).to match(%r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nhello\n\z}m)
        expect(seconds).to be < 1
      end

      it "without the gem, starts the app too" do
        expect(http_get(start(gem: false).port, "/").last).to match(%r{\AHTTP/1\.[01] 200 OK\r\n.*hello\n\z}m)
      end

      it "finds every hook point it protects: nothing logged as missing" do
        server = start
        expect(http_get(server.port, "/fork?via=plain&life=1").last).to match(forked)
        expect(File.read(server.log)).not_to include("has no")
      end

      it "lets a child answer on a connection handed off with keep:" do
        seconds, response = http_get(start.port, "/handoff")
        expect(response).to match(%r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nfrom the child\n\z}m)
        expect(seconds).to be_between(0.4, 3)
      end

      it "installs when the gem is loaded before Passenger (its classes load later)" do
        server = start_passenger(gem: false, spawn_method:,
                                 env: { "RUBYOPT" => "-runicorn/forksafe -runicorn/forksafe/integrations/passenger" })
        results = hijacks.to_h { |kind, (path, _)| [kind, get(server, path, "via=native", 6)] }
        expect(results.values.map(&:first)).to all(be < 1)
        results.each { |kind, (_, response)| expect(response).to match(hijacks[kind].last), kind }
        expect(File.read(server.log)).not_to include("has no")
      end

      forks.each do |name, query|
        it "gives EOF at once on every kind of response while the child of #{name} lives 6 s" do
          server = start
          results = own_paths.merge(hijacks).to_h { |kind, (path, _)| [kind, get(server, path, query, 6)] }
          expect(results.values.map(&:first)).to all(be < 1)
          results.each { |kind, (_, response)| expect(response).to match(own_paths.merge(hijacks)[kind].last), kind }
          child = Integer(get(server, "/fork?%s", query, 6).last[forked, 1])
          expect(Process.kill(0, child)).to eq(1) # alive, yet the client had its EOF
        end
      end

      %w[plain native].each do |via|
        it "without the gem, keeps the client of a hijack waiting for a child forked with via=#{via}" do
          server = start(gem: false)
          hijacks.each do |kind, (path, answer)|
            seconds, response = get(server, path, "via=#{via}", 3)
            expect(seconds).to be > 2.5, kind
            expect(response).to match(answer), kind
          end
        end

        it "without the gem, ends its own responses at once: Passenger shuts down (via=#{via})" do
          server = start(gem: false)
          own_paths.each do |kind, (path, answer)|
            seconds, response = get(server, path, "via=#{via}", 6)
            expect(seconds).to be < 1, kind
            expect(response).to match(answer), kind
          end
        end
      end

      %w[forksafe plain native].each do |via|
        it "gives the forker and an in-flight neighbour their responses, none of the child's bytes (via=#{via})" do
          (neighbour_seconds, neighbour), (forker_seconds, forker) = neighbour_and_prying_forker(start, via)
          expect(neighbour).to match(%r{\AHTTP/1\.[01] 200}).and end_with("slow done\n")
          expect(forker).to match(forked)
          expect([neighbour_seconds, forker_seconds]).to all(be < 2.5)
          expect(neighbour + forker).not_to include("LEAKED")
        end
      end

      it "without the gem, lets the child write into the neighbour's connection" do
        (_, neighbour), = neighbour_and_prying_forker(start(gem: false), "plain")
        expect(neighbour).to start_with("LEAKED").and end_with("slow done\n")
      end

      { "a fork in the request" => "via=plain", "a fork(2) from C in the request" => "via=native",
        "a fork from the app's job thread" => "via=plain&thread=1" }.each do |name, query|
        it "frees the app process's port once it exits (max-requests) while the orphan of #{name} lives" do
          server = start_passenger(spawn_method:, max_requests: 3)
          expect(app_port_after_exit(server) { orphan_request(server, query) }).to eq(:port_free)
        end

        it "without the gem, leaves the orphan of #{name} holding the app process's port once it exits" do
          server = start_passenger(gem: false, spawn_method:, max_requests: 3)
          expect(app_port_after_exit(server) { orphan_request(server, query) }).to eq(:port_held)
        end
      end
    end
  end
end
