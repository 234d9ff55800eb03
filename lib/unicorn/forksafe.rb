# frozen_string_literal: true

require_relative "forksafe/version"

# Makes fork inside a running web server safe for the server's clients.
# See README.md for the problem and the policy.
module ForkSafe
  # Raised when the system refuses an operation; bad arguments raise
  # ArgumentError or TypeError naming the argument.
  class Error < StandardError; end
end

require_relative "forksafe/forksafe_native"
