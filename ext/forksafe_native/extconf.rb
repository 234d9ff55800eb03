# frozen_string_literal: true

# Writes a Makefile that builds the Rust crate with cargo and installs the
# cdylib where Ruby loads extensions. This is the part of the rb_sys gem we
# need, without depending on it (it is not packaged for Debian).
#
# Make variables: CARGO (default cargo), CARGO_TARGET_DIR (default ./target,
# removed again by `make install`, so an installed gem keeps no build output),
# CARGO_PROFILE (default release), RUBY (the Ruby running this script).
#
# Where the child's pass cannot be built (not Linux, no cargo on PATH, or
# FORKSAFE_PLATFORM=unsupported, which tests that branch on Linux), the
# Makefile builds nothing and says why, and `make install` leaves the reason
# in forksafe_native.off where the library would go: native.rb then loads
# the gem with fork protection off and logs that reason. The install
# succeeds: one gem must not stop a team's `bundle install` on a laptop.

require "rbconfig"
require "shellwords"

# Why the child's pass is not built here, or nil.
def protection_off
  return "FORKSAFE_PLATFORM=unsupported was set at install" if forced_off?

  host_os = RbConfig::CONFIG["host_os"]
  return "the child's pass is built for Linux only, and this Ruby is for #{host_os}" unless host_os.include?("linux")

  cargo = ENV.fetch("CARGO", "").then { |name| name.empty? ? "cargo" : name }
  return if executable?(cargo)

  "#{cargo} was not found on PATH at install (with Rust installed, " \
    "`gem pristine unicorn-forksafe` or `bundle pristine unicorn-forksafe` builds it)"
end

# A FORKSAFE_PLATFORM other than "unsupported" or nothing is a mistake, and
# fails the install.
def forced_off?
  forced = ENV.fetch("FORKSAFE_PLATFORM", "")
  return forced == "unsupported" if ["", "unsupported"].include?(forced)

  abort %(unicorn-forksafe: FORKSAFE_PLATFORM must be "unsupported" or unset, not #{forced.inspect})
end

# As the shell finds a command: a path as it is, a name on PATH.
def executable?(command)
  return File.file?(command) && File.executable?(command) if command.include?("/")

  ENV.fetch("PATH", "").split(File::PATH_SEPARATOR).any? do |dir|
    path = File.join(dir.empty? ? "." : dir, command)
    File.file?(path) && File.executable?(path)
  end
end

# Where `make install` puts the library.
def install_dir
  <<~MAKE.chomp
    DESTDIR ?=
    # mkmf's convention, which RubyGems and rake-compiler both drive.
    sitearchdir = #{RbConfig::CONFIG["sitearchdir"]}
    target_prefix = /unicorn/forksafe
    RUBYARCHDIR = $(sitearchdir)$(target_prefix)
  MAKE
end

if (off = protection_off)
  message = "unicorn-forksafe: no native extension built: #{off}. " \
            "The gem runs with fork protection off: shutdown before close still works, ForkSafe.fork is a plain fork."
  puts message
  File.write("forksafe_native.off", "#{off}\n")
  File.write("Makefile", <<~MAKE)
    # #{message}
    #{install_dir}

    all:
    \t@echo #{message.shellescape}

    install:
    \tmkdir -p "$(DESTDIR)$(RUBYARCHDIR)"
    \tcp forksafe_native.off "$(DESTDIR)$(RUBYARCHDIR)/forksafe_native.off"

    clean:

    .PHONY: all install clean
  MAKE
  exit
end

crate = "forksafe_native"
manifest = File.expand_path("Cargo.toml", __dir__)
dlext = RbConfig::CONFIG["DLEXT"]
cdylib = "lib#{crate}.so" # Linux only: see protection_off
target_dir = ENV.fetch("CARGO_TARGET_DIR", "")
own_target = target_dir.empty?
target_dir = File.join(Dir.pwd, "target") if own_target

# Paths go in as they are: every use of them below is in double quotes.
File.write("Makefile", <<~MAKE)
  CARGO ?= cargo
  CARGO_TARGET_DIR ?= #{target_dir}
  CARGO_PROFILE ?= release
  # rb-sys's build script reads RbConfig (headers, ABI, libruby) from $RUBY,
  # else from the first `ruby` on PATH, which under rbenv, asdf or a second
  # Ruby need not be the one this extension is for. Not taken from the
  # environment: only `make RUBY=...` overrides it.
  RUBY = #{RbConfig.ruby}
  PROFILE_DIR = $(if $(filter dev,$(CARGO_PROFILE)),debug,$(CARGO_PROFILE))
  #{install_dir}
  DLLIB = #{crate}.#{dlext}

  all: $(DLLIB)

  # cargo knows what changed; make always asks it.
  $(DLLIB): FORCE
  \tRUBY="$(RUBY)" $(CARGO) rustc --manifest-path #{manifest.shellescape} --lib --locked \\
  \t\t--profile $(CARGO_PROFILE) --target-dir "$(CARGO_TARGET_DIR)"
  \tcp "$(CARGO_TARGET_DIR)/$(PROFILE_DIR)/#{cdylib}" $@

  # A new file renamed over the old one: a process that has the library
  # loaded (a server, a test run) keeps its mapping of the old inode, where
  # cp would rewrite the pages under it and crash it.
  install: $(DLLIB)
  \tmkdir -p "$(DESTDIR)$(RUBYARCHDIR)"
  \tcp $(DLLIB) "$(DESTDIR)$(RUBYARCHDIR)/$(DLLIB).new"
  \tmv -f "$(DESTDIR)$(RUBYARCHDIR)/$(DLLIB).new" "$(DESTDIR)$(RUBYARCHDIR)/$(DLLIB)"
  #{"\trm -rf \"$(CARGO_TARGET_DIR)\"" if own_target}

  clean:
  \trm -f $(DLLIB)

  .PHONY: all install clean FORCE
  FORCE:
MAKE
