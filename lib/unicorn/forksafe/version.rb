# frozen_string_literal: true

module ForkSafe
  VERSION = "0.1.0"
end
