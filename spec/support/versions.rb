# frozen_string_literal: true

module Support
  # The server and Rack versions the end-to-end specs run against: the
  # bundle's, which bin/compat sets for each cell of the matrix. A feature
  # only some versions have gets its situations only there.
  module Versions
    def self.of(name)
      Gem::Specification.find_by_name(name).version
    end

    # A server this bundle has, as "puma 8.0.2"; nil if it has none.
    def self.installed(name)
      "#{name} #{of(name)}"
    rescue Gem::MissingSpecError
      nil
    end

    # What a cell runs: "ruby 3.1.2, puma 8.0.2, rack 3.2.7".
    def self.summary
      ["ruby #{RUBY_VERSION}", *%w[unicorn puma pitchfork rack].filter_map { |name| installed(name) }].join(", ")
    end

    def self.at_least?(name, version)
      of(name) >= Gem::Version.new(version)
    end

    # Puma calls a Rack 3 streaming body from 6.0; 7.0 runs a request in a
    # fiber of its own, and made clean_thread_locals an alias of that.
    def self.puma_features
      [(:streaming_body if at_least?("puma", "6") && at_least?("rack", "3")),
       at_least?("puma", "7") ? :fiber_per_request : :clean_thread_locals].compact
    end

    # Pitchfork calls a body that does not respond to each, but in front of
    # every app it puts Rack::ContentLength, which in Rack 2 iterates the
    # body: a 500.
    def self.pitchfork_features
      [(:streaming_body if at_least?("rack", "3"))].compact
    end
  end
end
