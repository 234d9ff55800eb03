# frozen_string_literal: true

require "logger"

# A child whose descriptor table is full (RLIMIT_NOFILE reached) can open
# nothing. The dead socket its parent keeps for it needs no new descriptor;
# without one, the child still drops its references to the connections,
# warns, and runs on.
RSpec.describe "a child with no free descriptor", :without_hook do
  # Opens /dev/null until the limit, a few slots above what is open now.
  def fill_descriptor_table
    Process.setrlimit(:NOFILE, ForkSafe::Native.open_fds.max + 4)
    held = []
    loop { held << File.open(File::NULL) }
  rescue Errno::EMFILE
    held
  end

  # Forks, with fork(2) from C, a child of a process whose table is full
  # (Ruby's own fork needs a free descriptor for its timer): the pass runs
  # inside that fork. The full process then exits, and the child lives on.
  # Returns the child's pid, and the lines it logged up to its report.
  def pass_with_full_table(before_filling)
    reader, writer = track(*IO.pipe)
    pids, pid_writer = track(*IO.pipe)
    child { fork_with_full_table(writer, pid_writer, before_filling) }
    [writer, pid_writer].each(&:close)
    pid = Integer(pids.gets)
    children << pid
    [pid, lines_until_report(reader)]
  end

  def fork_with_full_table(writer, pid_writer, before_filling)
    ForkSafe.config.logger = Logger.new(writer)
    before_filling.call
    held = fill_descriptor_table
    ForkSafe::ChildPolicy.with_fork_options(keep: [], release_listeners: true) do
      ForkSafe::ChildPolicy.planned_fork { c_fork.call { report_pass(writer, held) } }
    end => pid
    pid_writer.puts(pid)
  end

  def report_pass(writer, held)
    ForkSafe::ChildPolicy.log_own_pass
    held.each(&:close)
    writer.puts("pass #{ForkSafe.last_pass.slice(:clients, :listeners, :dead_end, :failed)}")
    sleep 5
    exit!(0)
  end

  def lines_until_report(reader)
    lines = []
    while (line = reader.gets) # nil at EOF: the child died before its report
      lines << line
      break if line.start_with?("pass")
    end
    lines
  end

  it "uses the dead socket its parent keeps, and has nothing to warn about" do
    listener, outbound, accepted = tcp_connection
    fd = accepted.fileno
    pid, lines = pass_with_full_table(-> {})
    accepted.close
    expect(seconds_to_eof(outbound, limit: 3)).to be < 1 # while the child lives on
    expect(Process.kill(0, pid)).to eq(1) # alive
    pass = "pass {:clients=>[#{fd}], :listeners=>[#{listener.fileno}], :dead_end=>:socket, :failed=>{}}\n"
    expect(lines).to eq([pass])
  end

  it "without it, still drops its references to the client and the listener, warns, and runs on" do
    listener, outbound, accepted = tcp_connection
    fd = accepted.fileno
    pid, lines = pass_with_full_table(-> { kept_for_children.each { |kept| IO.for_fd(kept).close } })
    accepted.close
    expect(seconds_to_eof(outbound, limit: 3)).to be < 1
    expect(Process.kill(0, pid)).to eq(1) # alive
    pass = "pass {:clients=>[#{fd}], :listeners=>[#{listener.fileno}], :dead_end=>:vacated, :failed=>{}}\n"
    expect(lines).to match([/WARN -- : forksafe: child #{pid} had no descriptor .* \(vacated\)$/, pass])
  end

  it "a server out of descriptors still writes its error response, then ends the connection" do
    _listener, outbound, accepted = tcp_connection
    reader, writer = track(*IO.pipe)
    child do # the server, its table full, and a child it forked holding the connection
      writer.puts(Process.fork { sleep 6 })
      fill_descriptor_table
      ForkSafe.closing(accepted, writes_first: true) do
        accepted.write("HTTP/1.1 500 Internal Server Error\r\n\r\n")
        accepted.close
      end
      sleep 6
    end
    children << Integer(reader.gets) # the holder, killed after the example too
    accepted.close # the test's copy
    seconds, received = read_until_eof(outbound, 3)
    expect(received).to eq("HTTP/1.1 500 Internal Server Error\r\n\r\n")
    expect(seconds).to be < 1
  end
end
