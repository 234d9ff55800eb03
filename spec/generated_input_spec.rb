# frozen_string_literal: true

require "stringio"

# Random values thrown at every public entry point, in a child process: a
# crash of the VM (a signal, an abort) ends the child and fails the test.
# Each call either returns or raises ArgumentError, TypeError or
# ForkSafe::Error; anything else is a defect. The seed is printed on failure.
RSpec.describe "generated input" do
  let(:seed) { Integer(ENV.fetch("FORKSAFE_SEED", Random.new_seed % 1_000_000)) }

  def values(sockets)
    closed = IO.pipe.each(&:close).first
    [nil, true, false, 0, 1, -1, 2**31, 2**64, -2**63, 1.5, Float::NAN, "", "3", :release, :keep, :sym,
     [], [nil], [-1], [2**40],
     {}, { keep: 1 }, Object.new, StringIO.new, closed, $stdin, *sockets, Array.new(3) { sockets.sample }]
  end

  # name => a call with a random value in each argument.
  def entry_points(pick)
    native_calls(pick).merge(
      "ForkSafe.fork" => -> { random_fork(pick) },
      "ForkSafe.request" => -> { ForkSafe.request(pick.call) { nil } },
      "ForkSafe.closing" => -> { ForkSafe.closing(pick.call, writes_first: pick.call) { nil } },
      "ForkSafe.handed_off?" => -> { ForkSafe.handed_off?(pick.call) },
      "configure" => -> { random_configuration(pick) }
    )
  end

  # The native core's functions, by arity: each argument random. Those that
  # take plain data (checked by their Ruby callers) may also raise
  # RangeError for an Integer out of their type's range.
  def native_calls(pick)
    { open_fds: 0, sockets: 1, neutralize: 1, shutdown: 1, child_pass: 3, last_pass: 0, stats: 0,
      arm_pass: 2, arm_server_own: 0, arm_app_fork: 0, arm_no_pass: 0, disarm: 0, pass_unplanned: 1, role: 0,
      rise_to: 2, request_begin: 1, request_end: 1,
      pass_has_trouble?: 0 }.to_h do |name, arity|
      ["Native.#{name}", -> { ForkSafe::Native.public_send(name, *Array.new(arity) { pick.call }) }]
    end
  end

  def random_fork(pick)
    detach = pick.call
    pid = ForkSafe.fork(keep: pick.call, listeners: pick.call, detach:) { exit!(0) }
    Process.wait(pid) unless detach # a detached pid is no child of ours
  end

  def random_configuration(pick)
    ForkSafe.configure do |config|
      config.debug = pick.call
      config.fork_hook = pick.call
      config.logger = pick.call
    end
  end

  it "never crashes the VM and raises only argument errors" do
    random = Random.new(seed)
    outcome = in_child do
      _listener, _outbound, accepted = tcp_connection
      pool = values([accepted, TCPServer.new("127.0.0.1", 0)])
      calls = entry_points(-> { pool.sample(random:) })
      results = Array.new(3000) do
        name, call = calls.to_a.sample(random:)
        call.call
        :returned
      rescue ArgumentError, TypeError, ForkSafe::Error
        :rejected
      rescue RangeError
        name.start_with?("Native.") ? :rejected : "#{name}: RangeError"
      rescue Exception => e # rubocop:disable Lint/RescueException
        "#{name}: #{e.class}: #{e.message}"
      end
      results.tally
    end
    expect(outcome.keys - %i[returned rejected]).to eq([]), "seed #{seed}: #{outcome}"
    expect(outcome.values_at(:returned, :rejected)).to all(be > 300) # both kinds were exercised
  end
end
