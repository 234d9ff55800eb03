# frozen_string_literal: true

require "openssl"

module Support
  # A self-signed certificate for a TLS server on loopback, and a client
  # that reads a response until EOF.
  module Tls
    # Writes key.pem and cert.pem into dir; returns puma's bind parameters.
    def self_signed(dir)
      key, cert = %w[key.pem cert.pem].map { |name| File.join(dir, name) }
      system("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
             "-keyout", key, "-out", cert, err: File::NULL, exception: true)
      "key=#{key}&cert=#{cert}"
    end

    # [seconds to EOF (close_notify or TCP EOF), plaintext received].
    def https_get(port, path, limit: 15)
      context = OpenSSL::SSL::SSLContext.new.tap { |c| c.verify_mode = OpenSSL::SSL::VERIFY_NONE }
      tls = OpenSSL::SSL::SSLSocket.new(track(TCPSocket.new("127.0.0.1", port)), context)
      Timeout.timeout(limit) { tls.connect } # a server that never answers fails the example, not the suite
      tls.write("GET #{path} HTTP/1.0\r\nHost: localhost\r\n\r\n")
      read_tls_until_eof(tls, limit)
    end

    private

    def read_tls_until_eof(tls, limit)
      started = monotonic
      received = +""
      Timeout.timeout(limit) { loop { received << tls.readpartial(65_536) } }
    rescue EOFError, Errno::ECONNRESET, OpenSSL::SSL::SSLError
      [monotonic - started, received]
    rescue Timeout::Error
      [nil, received]
    end
  end
end
