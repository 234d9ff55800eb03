# frozen_string_literal: true

require_relative "sockets"

require "open3"

module Support
  # HTTP clients: a raw one that reads until EOF, as nginx does for an
  # upstream response without Content-Length (the observable of every hang
  # here), a persistent HTTP/1.1 one, and curl.
  module Http
    include Sockets

    CURL_SUMMARY = "\n%{http_code} %{time_total}" # rubocop:disable Style/FormatStringToken (curl's, not Ruby's)

    # Sends a request and reads until EOF. Returns [seconds to EOF, response],
    # seconds nil if no EOF came within `limit`. headers: more of them, as a
    # proxy in front adds (X-Forwarded-Proto).
    def http_get(port, path, limit: 15, headers: {})
      socket = track(TCPSocket.new("127.0.0.1", port))
      more = headers.map { |name, value| "#{name}: #{value}\r\n" }.join
      socket.write("GET #{path} HTTP/1.0\r\nHost: localhost\r\n#{more}\r\n")
      read_until_eof(socket, limit)
    end

    # One request on a persistent HTTP/1.1 connection; returns the response
    # once its Content-Length worth of body has arrived.
    def keep_alive_get(socket, path, limit: 5)
      socket.write("GET #{path} HTTP/1.1\r\nHost: localhost\r\n\r\n")
      response = +""
      Timeout.timeout(limit) do
        response << socket.readpartial(65_536) until complete?(response)
      end
      response
    end

    # A neighbour request in flight on another thread (its app sleeps 1 s)
    # while `path` forks: [[seconds, response] of each].
    def neighbour_and_forker(port, path, limit: 15)
      neighbour = Thread.new { http_get(port, "/slow?s=1", limit:) }
      sleep 0.3 # the neighbour is inside the app now
      forker = http_get(port, path, limit:)
      [neighbour.value, forker]
    end

    # curl, as a user would: [seconds, status, body].
    def curl(port, path, limit: 15)
      out, status = Open3.capture2("curl", "-sS", "--max-time", limit.to_s, "-w", CURL_SUMMARY,
                                   "http://127.0.0.1:#{port}#{path}")
      raise "curl failed (#{status.exitstatus}): #{out}" unless status.success?

      body, _, summary = out.rpartition("\n")
      code, seconds = summary.split
      [Float(seconds), code, body]
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

    private

    def complete?(response)
      head, separator, body = response.partition("\r\n\r\n")
      return false if separator.empty?

      length = head[/^content-length:\s*(\d+)/i, 1] or raise "no Content-Length in #{head.inspect}"
      body.bytesize >= Integer(length)
    end

    # What the fixture app's /hijack (full) and /response_hijack answer.
    def expect_hijacked(full, response)
      expect(full).to eq("HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nhijacked\n")
      expect(response).to match(%r{\AHTTP/1\.[01] 200 OK\r\n.*\r\n\r\nstreamed\n\z}m)
    end
  end
end
