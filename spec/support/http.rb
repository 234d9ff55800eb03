# frozen_string_literal: true

module Support
  # A raw HTTP client that reads until EOF, as nginx does for an upstream
  # response without Content-Length: the observable of every hang here.
  module Http
    include Sockets

    # Sends a request and reads until EOF. Returns [seconds to EOF, response],
    # seconds nil if no EOF came within `limit`.
    def http_get(port, path, limit: 15)
      socket = track(TCPSocket.new("127.0.0.1", port))
      socket.write("GET #{path} HTTP/1.0\r\nHost: localhost\r\n\r\n")
      read_until_eof(socket, limit)
    end

    # Status codes of `count` forking requests, alternating Kernel#fork and
    # ForkSafe.fork, each child living two seconds.
    def forking_statuses(server, count)
      Array.new(count) do |i|
        status_of(http_get(server.port, "/fork?via=#{i.even? ? "plain" : "forksafe"}&life=2").last)
      end
    end

    def status_of(response)
      response[9, 3]
    end
  end
end
