# frozen_string_literal: true

# Writes a Makefile that builds the Rust crate with cargo and installs the
# cdylib where Ruby loads extensions. This is the part of the rb_sys gem we
# need, without depending on it (it is not packaged for Debian).
#
# Make variables: CARGO (default cargo), CARGO_TARGET_DIR (default ./target,
# removed again by `make install`, so an installed gem keeps no build output),
# CARGO_PROFILE (default release), RUBY (the Ruby running this script).

require "rbconfig"
require "shellwords"

crate = "forksafe_native"
manifest = File.expand_path("Cargo.toml", __dir__)
darwin = RbConfig::CONFIG["host_os"].include?("darwin")
dlext = RbConfig::CONFIG["DLEXT"] # "so" on Linux, "bundle" on macOS
cdylib = darwin ? "lib#{crate}.dylib" : "lib#{crate}.so"
# A Ruby extension resolves the VM's symbols when it is loaded; macOS's
# linker must be told to allow that.
link_args = darwin ? "-C link-arg=-undefined -C link-arg=dynamic_lookup" : ""
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
  DESTDIR ?=
  # mkmf's convention, which RubyGems and rake-compiler both drive.
  sitearchdir = #{RbConfig::CONFIG["sitearchdir"]}
  target_prefix = /unicorn/forksafe
  RUBYARCHDIR = $(sitearchdir)$(target_prefix)
  DLLIB = #{crate}.#{dlext}

  all: $(DLLIB)

  # cargo knows what changed; make always asks it.
  $(DLLIB): FORCE
  \tRUBY="$(RUBY)" $(CARGO) rustc --manifest-path #{manifest.shellescape} --lib --locked \\
  \t\t--profile $(CARGO_PROFILE) --target-dir "$(CARGO_TARGET_DIR)" -- #{link_args}
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
