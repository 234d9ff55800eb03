# frozen_string_literal: true

# A fork that fails: the error reaches the caller as from Process.fork, and
# nothing is left behind. Simulated at the hook boundary, in a child of the
# test's own: Process._fork itself raises EAGAIN, as fork(2) does at
# RLIMIT_NPROC, under the prepended hook. (Really exhausting RLIMIT_NPROC
# also stops Ruby from restarting its timer thread after the failed fork.)
RSpec.describe "a fork that fails" do
  # Runs the block in a child where fork fails, returning its result.
  def unable_to_fork(&block)
    in_child do
      Process.singleton_class.define_method(:_fork) { raise Errno::EAGAIN, "fork(2)" }
      block.call
    end
  end

  def failure_of
    yield
    :forked
  rescue SystemCallError => e
    e.class
  end

  it "raises Errno::EAGAIN from Kernel#fork through the hook, and counts no fork" do
    result = unable_to_fork do
      forks = ForkSafe.stats[:forks]
      [failure_of { fork { exit!(0) } }, ForkSafe.stats[:forks] - forks]
    end
    expect(result).to eq([Errno::EAGAIN, 0])
  end

  it "raises Errno::EAGAIN from ForkSafe.fork, detached or not" do
    result = unable_to_fork do
      [failure_of { ForkSafe.fork { exit!(0) } }, failure_of { ForkSafe.fork(detach: true) { exit!(0) } }]
    end
    expect(result).to eq([Errno::EAGAIN, Errno::EAGAIN])
  end

  it "hands nothing off and leaves no fd or fork option behind" do
    _listener, _outbound, accepted = tcp_connection
    result = unable_to_fork do
      fds = ForkSafe::Native.open_fds
      error = failure_of { ForkSafe.fork(keep: [accepted]) { exit!(0) } }
      [error, ForkSafe.handed_off?(accepted), ForkSafe::Native.open_fds == fds, Thread.current[:forksafe_fork]]
    end
    expect(result).to eq([Errno::EAGAIN, false, true, nil])
  end
end
