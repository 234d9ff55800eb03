# frozen_string_literal: true

module ForkSafe
  # Raised when the system refuses an operation, or the native core fails;
  # bad arguments raise ArgumentError or TypeError naming the argument.
  # Defined here, before the native core loads: it raises this class.
  class Error < StandardError; end

  # The empty list of fds, shared.
  NO_FDS = [].freeze
end

require_relative "forksafe_native"
