# frozen_string_literal: true

require_relative "clock"

module Support
  # Real sockets on loopback, closed after each example.
  module Sockets
    include Clock

    def track(*ios)
      (@tracked_ios ||= []).concat(ios)
      ios.size == 1 ? ios.first : ios
    end

    def close_tracked
      (@tracked_ios || []).each { |io| io.close unless io.closed? }
    end

    # A loopback TCP port nobody listens on (for a server to bind).
    def free_port
      server = TCPServer.new("127.0.0.1", 0)
      server.addr[1]
    ensure
      server&.close
    end

    # [listener, outbound (client side), accepted (server side)]. In a
    # process with a server's role (the suite's serves) the listener is the
    # server's: see the server's.
    def tcp_connection(host = "127.0.0.1", bind: host)
      listener = the_server_s(track(TCPServer.new(bind, 0)))
      outbound = track(TCPSocket.new(host, listener.addr[1]))
      [listener, outbound, track(listener.accept)]
    end

    def unix_connection(dir)
      path = File.join(dir, "app.sock")
      listener = the_server_s(track(UNIXServer.new(path)))
      outbound = track(UNIXSocket.new(path))
      [listener, outbound, track(listener.accept)]
    end

    # As a server's integration does where it binds: its process says its
    # role again, and the listener is remembered as the server's.
    def the_server_s(listener)
      role = ForkSafe.role
      ForkSafe.public_send(role, nil) unless role == :unknown
      listener
    end

    # Seconds until `io` reports EOF, or nil if it has not within `limit`.
    def seconds_to_eof(io, limit:)
      read_until_eof(io, limit).first
    end

    # Reads until EOF (a reset counts: the connection is over). Returns
    # [seconds to EOF, bytes read], seconds nil if no EOF came within `limit`.
    def read_until_eof(io, limit)
      started = monotonic
      received = +""
      loop do
        remaining = limit - (monotonic - started)
        return [nil, received] if remaining <= 0 || !io.wait_readable(remaining)

        received << io.read_nonblock(65_536)
      rescue EOFError, Errno::ECONNRESET
        return [monotonic - started, received]
      end
    end

    # The descriptors the gem keeps open for this process's children (its
    # status file and a dead socket), as /proc shows them.
    def kept_for_children
      Dir.children("/proc/self/fd").map(&:to_i).select { |fd| status_file?(fd) || dead_socket?(fd) }
    end

    def status_file?(fd)
      File.readlink("/proc/self/fd/#{fd}").match?(%r{\A/proc/\d+/status\z})
    rescue Errno::ENOENT # the listing's own descriptor
      false
    end

    # An unnamed Unix socket that reads EOF at once.
    def dead_socket?(fd)
      row = ForkSafe::Native.sockets([]).find { |s| s[:fd] == fd }
      return false unless row && row[:kind] == :connected && row[:local].nil? && row[:remote].nil?

      IO.for_fd(fd, autoclose: false).read_nonblock(1, exception: false).nil?
    end

    def kind_of_fd(io, in_flight: [])
      row = ForkSafe::Native.sockets(in_flight.map { |r| r.is_a?(IO) ? r.fileno : r }).find { |s| s[:fd] == io.fileno }
      row && row[:kind]
    end

    def ipv6_loopback?
      Socket.ip_address_list.any?(&:ipv6_loopback?) && TCPServer.new("::1", 0).close.nil?
    rescue SystemCallError
      false
    end
  end
end
