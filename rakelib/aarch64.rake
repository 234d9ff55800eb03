# frozen_string_literal: true

# aarch64 Linux from this x86_64 machine, with Debian's packages only:
# gem:aarch64_libs cross-compiles the extension for each Ruby the platform
# gem carries (bin/aarch64-build); compat:aarch64 installs the aarch64
# platform gem in an arm64 Debian root under qemu and runs specs there with
# it (bin/aarch64-run): Debian 13's Ruby 3.3, or with
# FORKSAFE_AARCH64_SUITE=bookworm Debian 12's 3.1. Both need root.

AARCH64_LIBS = "tmp/platforms/aarch64-linux" # rakelib/platforms.rake's PLATFORM_LIBS/PLATFORM
# The root's /out, as bin/compat's cells: aarch64.json (rspec's),
# aarch64.versions, aarch64.result (one line); the gem in aarch64/.
AARCH64_OUT = "tmp/compat"
# What the arm64 root runs: the native core and the pass inside fork(2).
# Not reset_client_spec: qemu-user answers getsockopt(TCP_INFO) with 4
# bytes (the kernel gives 256 natively), so a reset client, told by its
# tcpi_segs_in, is taken for an unconnected socket there only. Debian's
# arm64 puma end to end (spec/e2e/puma_spec.rb) takes 10 minutes under
# emulation: FORKSAFE_AARCH64_SPECS="..." runs any list instead.
AARCH64_SPECS = %w[spec/native spec/pass_inside_fork_spec.rb].freeze
AARCH64_RSPEC = ["--exclude-pattern", "spec/native/reset_client_spec.rb"].freeze

# PLATFORM_APIS and build_fat_gem are rakelib/platforms.rake's, loaded after
# this file: used only when a task runs.
namespace :gem do
  desc "The aarch64 extension for each Ruby of the fat gems, cross-compiled: " \
       "#{AARCH64_LIBS}/API/forksafe_native.so (bin/aarch64-build, root only)"
  task(:aarch64_libs) { sh "bin/aarch64-build", AARCH64_LIBS, *PLATFORM_APIS }
end

# One line for docs/RELEASING.md: what ran, where, its count and its time.
def aarch64_result(specs, seconds)
  require "json"
  summary = begin
    JSON.parse(File.read("#{AARCH64_OUT}/aarch64.json"))["summary_line"]
  rescue SystemCallError, JSON::ParserError
    "no results"
  end
  versions = File.exist?("#{AARCH64_OUT}/aarch64.versions") ? File.read("#{AARCH64_OUT}/aarch64.versions").strip : "?"
  "aarch64 under qemu (#{versions}): #{summary}, in #{seconds.round} s " \
    "(#{Time.now.utc.strftime("%Y-%m-%d")}, #{specs.join(" ")})"
end

# In the arm64 root (sh, arguments: the gem's file name, then rspec's):
# no cargo there; the gem installed into an empty GEM_HOME, required from
# outside the checkout (the library must be the gem's, for this Ruby) and
# forked through; then the copy's lib/ is the installed gem's, so that the
# specs, and the servers and Rubies they start, load the gem.
AARCH64_CHECK = <<~'SH'
  gem=$1
  shift
  if command -v cargo >/dev/null; then echo "compat:aarch64: cargo is in the root" >&2; exit 1; fi
  export GEM_HOME=/tmp/gems
  gem install --local --no-document --quiet "/out/aarch64/$gem" >/dev/null
  ruby -e '
    require "unicorn/forksafe"
    native = $LOADED_FEATURES.grep(/forksafe_native/).first
    api = RUBY_VERSION[/\A\d+\.\d+/]
    abort "compat:aarch64: loaded #{native}" unless native.start_with?(ENV["GEM_HOME"]) &&
                                                   native.end_with?("/#{api}/forksafe_native.so")
    status = Process.wait2(ForkSafe.fork { exit!(0) }).last
    abort "compat:aarch64: the child of ForkSafe.fork ended with #{status}" unless status.success?
    puts "compat:aarch64: #{ARGV[0]} installed on #{RUBY_PLATFORM}, loaded #{native}, forked"
  ' "$gem"
  rm -rf lib
  ln -s "$(ruby -e 'print Gem::Specification.find_by_name("unicorn-forksafe").full_gem_path')/lib" lib
  ruby -r./spec/support/versions -e 'puts Support::Versions.summary' >/out/aarch64.versions
  exec rspec "$@" --format progress --format json --out /out/aarch64.json
SH

namespace :compat do
  desc "The aarch64 platform gem in an arm64 Debian root under qemu: installs with no cargo, " \
       "loads, forks, passes #{AARCH64_SPECS.join(" ")} (bin/aarch64-run)"
  task aarch64: "gem:aarch64_libs" do
    require "fileutils"
    # The fat gem gem:platforms makes, packed from the same libraries.
    build_fat_gem("aarch64-linux", into: "#{AARCH64_OUT}/aarch64")
    gem = File.basename(fat_gem_path("aarch64-linux"))
    FileUtils.rm_f(%w[json versions result].map { |ext| "#{AARCH64_OUT}/aarch64.#{ext}" })
    specs = ENV.fetch("FORKSAFE_AARCH64_SPECS", AARCH64_SPECS.join(" ")).split
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    puts "bin/aarch64-run #{AARCH64_OUT} -- (install, load, fork, then) rspec #{specs.join(" ")}"
    command = ["bin/aarch64-run", AARCH64_OUT, "--", "sh", "-euc", AARCH64_CHECK, "sh", gem]
    sh(*command, *AARCH64_RSPEC, *specs, verbose: false) do |ok, _|
      result = aarch64_result(specs, Process.clock_gettime(Process::CLOCK_MONOTONIC) - started)
      File.write("#{AARCH64_OUT}/aarch64.result", "#{result}\n")
      puts "compat:aarch64: #{result}"
      ok or abort "compat:aarch64 failed"
    end
  end
end
