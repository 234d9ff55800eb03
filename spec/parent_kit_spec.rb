# frozen_string_literal: true

require "fcntl"

# A process keeps two descriptors open for its children: a dead socket to
# point their clients at, and its own /proc status file, whose FDSize bounds
# the fds a child inherited. A child trusts neither without checking.
RSpec.describe "the descriptors a parent keeps for its children" do
  it "are two, whatever the process forks" do
    before = kept_for_children
    in_child { nil }
    expect(before.size).to eq(2)
    expect(kept_for_children).to eq(before)
  end

  it "bound the fds a child inherited by the parent's table now, not when they were opened" do
    _listener, outbound, accepted = tcp_connection
    high = Process.getrlimit(:NOFILE).first.clamp(0, 3000) - 1
    moved = track(Socket.for_fd(accepted.fcntl(Fcntl::F_DUPFD, high)))
    running_child
    accepted.close
    moved.close
    expect(seconds_to_eof(outbound, limit: 3)).to be < 1
  end

  it "are not trusted once app code has closed them and reused the numbers" do
    kinds = in_child do
      ForkSafe.serving(nil) # a child of a server's serves nothing until it says so
      # F_DUPFD takes the lowest free number from fd on: fd itself, even
      # where an earlier example left a lower number free.
      null = File.open(File::NULL)
      taken = kept_for_children.each { |fd| IO.for_fd(fd).close }
      files = taken.map { |fd| IO.for_fd(null.fcntl(Fcntl::F_DUPFD, fd)) }
      null.close
      raise "numbers not reused" unless files.map(&:fileno) == taken

      _listener, _outbound, accepted = tcp_connection
      # The first grandchild has the parent's pair, the second this process's.
      Array.new(2) { in_child { [kind_of_fd(accepted), files.map { |f| File.readlink("/proc/self/fd/#{f.fileno}") }] } }
    end
    expect(kinds).to eq([[:connected, ["/dev/null"] * 2]] * 2)
  end
end
