# frozen_string_literal: true

# Each situation of the problem, run on real servers (the test suite's
# harness) against spec/fixtures/forking_app.ru, whose children live `life`
# seconds. A situation is a method taking the harness and gem: true/false
# and returning what the client saw.
class Situations
  # `problem`: the child changed what the client saw (EOF only when the
  # child exited, a port still held, bytes from the child).
  Outcome = Struct.new(:text, :problem)

  # name, server, method.
  ALL = [
    ["normal response", "unicorn", :unicorn_normal],
    ["normal response", "puma", :puma_normal],
    ["normal response", "nginx", :nginx_normal],
    ["error response", "unicorn", :unicorn_error],
    ["error response", "puma", :puma_error],
    ["error response", "nginx", :nginx_error],
    ["worker killed by timeout (3 s)", "unicorn", :unicorn_timeout],
    ["orphan after the server stops", "unicorn", :unicorn_orphan],
    ["orphan after the server stops", "puma", :puma_orphan],
    ["child writes into its inherited sockets", "unicorn", :unicorn_pry],
    ["neighbour request on another thread", "puma", :puma_neighbour],
    ["child writes into its inherited sockets", "puma", :puma_pry]
  ].freeze

  def initialize(life)
    @life = life
    @neighbour_runs = {} # one puma run gives two rows, keyed by gem
  end

  def unicorn_normal(harness, gem) = response(harness, harness.start_unicorn(gem:), fork_path)
  def puma_normal(harness, gem) = response(harness, harness.start_puma(gem:), fork_path)
  def nginx_normal(harness, gem) = through_nginx(harness, gem, fork_path)
  def unicorn_error(harness, gem) = response(harness, harness.start_unicorn(gem:), "#{fork_path}&raise=1")
  def puma_error(harness, gem) = response(harness, harness.start_puma(gem:), "#{fork_path}&raise=1")
  def nginx_error(harness, gem) = through_nginx(harness, gem, "#{fork_path}&raise=1")
  def unicorn_orphan(harness, gem) = orphan(harness, harness.start_unicorn(gem:), :QUIT)
  def puma_orphan(harness, gem) = orphan(harness, harness.start_puma(gem:), :TERM)
  def puma_neighbour(harness, gem) = (@neighbour_runs[gem] = neighbour(harness, gem)).fetch(:wait)
  def puma_pry(_harness, gem) = @neighbour_runs.fetch(gem).fetch(:leak)

  # The worker hangs and the master kills it; the child outlives the kill.
  def unicorn_timeout(harness, gem)
    server = harness.start_unicorn(gem:, timeout: 3)
    seconds, = harness.http_get(server.port, "/fork?via=plain&hang=60&life=#{@life + 3}", limit: @life + 8)
    eof(seconds, @life + 3)
  end

  # The app answers half a second after the fork, so the child has written
  # by then.
  def unicorn_pry(harness, gem)
    path = "#{fork_path}&pry=1&hang=0.5"
    _, response = harness.http_get(harness.start_unicorn(gem:).port, path, limit: @life + 5)
    leak(response)
  end

  private

  def fork_path = "/fork?via=plain&life=#{@life}"

  # The client waited for the child: no EOF, or EOF only once it exited.
  def eof(seconds, life = @life)
    return Outcome.new("no EOF after #{(life + 5).round} s", true) if seconds.nil?

    Outcome.new(format("EOF after %.2f s", seconds), seconds >= life - 0.5)
  end

  def leak(received)
    leaked = received.include?("LEAKED")
    Outcome.new(leaked ? "the child's bytes reached a client" : "no stray bytes", leaked)
  end

  def response(harness, server, path)
    seconds, response = harness.http_get(server.port, path, limit: @life + 5)
    with_status(response[%r{\AHTTP/1\.\d (\d{3})}, 1], eof(seconds))
  end

  def through_nginx(harness, gem, path)
    nginx = harness.start_nginx(harness.start_unicorn(gem:, unix: true))
    seconds, status, = harness.curl(nginx.port, path, limit: @life + 5)
    with_status(status, eof(seconds))
  end

  def with_status(status, outcome)
    Outcome.new("#{status || "no status"}, #{outcome.text}", outcome.problem)
  end

  # After the server stops while the orphan lives, can a new server bind?
  # (Not waiting for EOF: without the gem, puma's comes when the orphan
  # exits.)
  def orphan(harness, server, signal)
    harness.http_get(server.port, fork_path, limit: 1)
    harness.stop_server(server, signal)
    TCPServer.new("127.0.0.1", server.port).close
    Outcome.new("port free, restart binds", false)
  rescue Errno::EADDRINUSE
    Outcome.new("orphan holds the port: EADDRINUSE", true)
  end

  # A neighbour request in flight on puma's other thread while the app forks
  # a child that writes into every socket it inherited.
  def neighbour(harness, gem)
    server = harness.start_puma(gem:, threads: 2)
    (seconds, response), (_, forker) = harness.neighbour_and_forker(server.port, "#{fork_path}&pry=1",
                                                                    limit: @life + 5)
    { wait: eof(seconds), leak: leak(response + forker) }
  end
end
