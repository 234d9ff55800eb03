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
  #
  # Where the child's pass cannot run, ForkSafe::Native is a stand-in in Ruby
  # instead (native_stand_in.rb), and fork protection is off: on a Ruby that
  # is not Linux's, with FORKSAFE_PLATFORM=unsupported (which tests this
  # branch on Linux), or when the install built no extension and left the
  # reason in forksafe_native.off (see extconf.rb). This is the only place
  # that tells the two apart.
  module NativeLoader
    FEATURES = ["#{RUBY_VERSION[/\A\d+\.\d+/]}/forksafe_native", "forksafe_native"].freeze
    # A checkout has the gemspec next to lib/; an installed gem does not.
    ROOT = File.expand_path("../../..", __dir__)
    # What the install leaves instead of the library: why it built none.
    OFF = File.expand_path("forksafe_native.off", __dir__)

    # Why fork protection is off in this process (a sentence), or nil when
    # the native core is loaded.
    def self.off_reason
      @off_reason
    end

    def self.load
      return stand_in if (@off_reason = off_before_loading)

      missing = FEATURES.map do |feature|
        return require_relative(feature)
      rescue LoadError => e
        missing(e, feature)
      end
      return stand_in if (@off_reason = built_none)

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

    # The LoadError of a feature that is not there; any other is raised.
    def self.missing(error, feature)
      raise too_old_a_glibc(error) if error.message.include?("GLIBC_")
      raise error unless error.path == File.expand_path(feature, __dir__)

      error
    end

    # A platform gem's library on a system whose glibc is older than the one
    # it needs (a version `GLIBC_2.34' not found): Ruby's message, and the
    # way out, the source gem, built here.
    def self.too_old_a_glibc(error)
      LoadError.new("#{error.message}\nunicorn-forksafe: this platform gem needs a newer glibc than this " \
                    "system's. Take the source gem instead (it builds with Rust): bundle config set " \
                    "force_ruby_platform true, or gem install --platform ruby")
    end

    def self.build_command
      if File.exist?(File.join(ROOT, "unicorn-forksafe.gemspec"))
        "Build it in #{ROOT} with: bundle exec rake compile"
      elsif (carried = platform_gem_rubies).any?
        "This platform gem carries it for Ruby #{carried.join(", ")} only. Take the source gem instead " \
          "(it builds it with Rust): bundle config set force_ruby_platform true, or gem install --platform ruby"
      else
        "Build it with: gem pristine unicorn-forksafe (in a bundle: bundle pristine unicorn-forksafe)"
      end
    end

    # The Ruby minors whose library a platform gem carries (Ruby 3.2 falls
    # inside a fat gem's required_ruby_version without being one of them).
    def self.platform_gem_rubies
      Dir[File.join(__dir__, "*.*", "forksafe_native.*")].map { |path| File.basename(File.dirname(path)) }.sort
    end

    # FORKSAFE_PLATFORM other than "unsupported" or nothing is a mistake.
    def self.off_before_loading
      case (forced = ENV.fetch("FORKSAFE_PLATFORM", ""))
      when "unsupported" then return "FORKSAFE_PLATFORM=unsupported is set"
      when "" then nil
      else raise Error, %(FORKSAFE_PLATFORM must be "unsupported" or unset, not #{forced.inspect})
      end
      return if RUBY_PLATFORM.include?("linux")

      "the child's pass is built for Linux only, and this Ruby is #{RUBY_PLATFORM}"
    end

    def self.built_none
      reason = File.read(OFF).strip
      "the gem was installed without its native extension, because #{reason.empty? ? "(no reason given)" : reason}"
    rescue SystemCallError
      nil
    end

    def self.stand_in
      require_relative "native_stand_in"
    end
    private_class_method :off_before_loading, :built_none, :stand_in, :missing, :too_old_a_glibc
  end
end

ForkSafe::NativeLoader.load
