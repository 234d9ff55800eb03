# frozen_string_literal: true

require "logger"

# A child whose descriptor table is full (RLIMIT_NOFILE reached) can make no
# dead socket to point the client's fd at. It still drops its reference to
# the connection, warns, and runs on. (The pass is called directly once the
# table is full: Ruby's own fork needs a free descriptor for its timer.)
RSpec.describe "a child with no free descriptor", :without_hook do
  # Opens /dev/null until the limit, a few slots above what is open now.
  def fill_descriptor_table
    Process.setrlimit(:NOFILE, ForkSafe::Native.open_fds.max + 4)
    held = []
    loop { held << File.open(File::NULL) }
  rescue Errno::EMFILE
    held
  end

  it "still drops its references to the client and the listener, warns, and runs on" do
    listener, outbound, accepted = tcp_connection
    fd = accepted.fileno
    reader, writer = track(*IO.pipe)
    pid = child do
      ForkSafe.config.logger = Logger.new(writer)
      held = fill_descriptor_table
      ForkSafe.forked(0, ForkSafe::ChildPlan.new([], true, []))
      held.each(&:close)
      writer.puts("pass #{ForkSafe.last_pass.slice(:clients, :listeners, :dead_end, :failed)}")
      sleep 5
    end
    writer.close
    lines = [reader.gets, reader.gets]
    accepted.close
    expect(seconds_to_eof(outbound, limit: 3)).to be < 1 # while the child lives on
    expect(Process.wait(pid, Process::WNOHANG)).to be_nil
    pass = "pass {:clients=>[#{fd}], :listeners=>[#{listener.fileno}], :dead_end=>:vacated, :failed=>{}}\n"
    expect(lines).to match([/WARN -- : forksafe: child #{pid} had no descriptor .* \(vacated\)$/, pass])
  end
end
