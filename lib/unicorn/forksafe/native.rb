# frozen_string_literal: true

module ForkSafe
  # Raised when the system refuses an operation, or the native core fails;
  # bad arguments raise ArgumentError or TypeError naming the argument.
  # Defined here, before the native core loads: it raises this class.
  class Error < StandardError; end

  # The empty list of fds, shared.
  NO_FDS = [].freeze

  # Loads the native extension. A platform gem carries it built for one
  # Ruby minor version, in a directory named after it (rake compile puts it
  # there too); a source gem's install builds it next to this file. When
  # neither is there, the LoadError says what is missing and the command that
  # builds it. Any other failure (a library that does not link, an undefined
  # symbol) is raised as it is: rebuilding is not the answer to those.
  module NativeLoader
    FEATURES = ["#{RUBY_VERSION[/\A\d+\.\d+/]}/forksafe_native", "forksafe_native"].freeze
    # A checkout has the gemspec next to lib/; an installed gem does not.
    ROOT = File.expand_path("../../..", __dir__)

    def self.load
      missing = FEATURES.map do |feature|
        return require_relative(feature)
      rescue LoadError => e
        raise unless e.path == File.expand_path(feature, __dir__)

        e
      end
      raise LoadError, explain(missing)
    end

    def self.explain(missing)
      require "rbconfig"
      file = "forksafe_native.#{RbConfig::CONFIG["DLEXT"]}"
      places = missing.map { |e| File.dirname(e.path) }.join(" nor in ")
      <<~TEXT.chomp
        unicorn-forksafe: its native extension for Ruby #{RUBY_VERSION} is missing: no #{file} in #{places}.
        #{build_command}
        (#{missing.map(&:message).join("; ")})
      TEXT
    end

    def self.build_command
      if File.exist?(File.join(ROOT, "unicorn-forksafe.gemspec"))
        "Build it in #{ROOT} with: bundle exec rake compile"
      else
        "Build it with: gem pristine unicorn-forksafe (in a bundle: bundle pristine unicorn-forksafe)"
      end
    end
  end
end

ForkSafe::NativeLoader.load
