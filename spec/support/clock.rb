# frozen_string_literal: true

module Support
  # Time as the tests measure it, and waiting for something to happen.
  module Clock
    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end

    # Calls the block every 50 ms until it returns something truthy, which
    # it returns; after `limit` seconds raises the message `failure` gives.
    def poll(limit, failure)
      deadline = monotonic + limit
      loop do
        result = yield
        return result if result
        raise failure.call if monotonic > deadline

        sleep 0.05
      end
    end
  end
end
