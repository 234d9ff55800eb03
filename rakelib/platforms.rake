# frozen_string_literal: true

require "fileutils"
require "rubygems/package"

# Fat platform gems, as rb-sys gems ship them: one gem per CPU, carrying the
# extension built for every Ruby minor in PLATFORM_APIS, each in
# lib/unicorn/forksafe/API/ (where native.rb looks first), no extension to
# build and no Rust source. Its required_ruby_version spans those minors, so
# a Ruby outside them takes the source gem.
#
# The libraries come from tmp/platforms/PLATFORM/API/forksafe_native.so:
# gem:x86_64_libs builds x86_64's (3.1 on the host, 3.3 in the Debian 13 root,
# 3.4 in the Debian 13 root with experimental's Ruby 3.4: bin/debian13, root
# only); gem:aarch64_libs (rakelib/aarch64.rake), where it is defined, builds
# aarch64's.
PLATFORM_APIS = %w[3.1 3.3 3.4].freeze
PLATFORM_LIBS = "tmp/platforms"
PLATFORM_STAGE = "tmp/platforms/stage"
# Where each Ruby minor is built: nil on the host, else bin/debian13's
# environment for the Debian 13 root that has it.
PLATFORM_ROOTS = { "3.3" => {}, "3.4" => { "FORKSAFE_DEBIAN13_RUBY" => "3.4" } }.freeze

# The fat gem for PLATFORM ("x86_64-linux"): pkg/unicorn-forksafe-VERSION-PLATFORM.gem.
def fat_gem_path(platform) = "pkg/unicorn-forksafe-#{GEMSPEC.version}-#{platform}.gem"

def fat_gem_spec(platform, apis)
  GEMSPEC.dup.tap do |spec|
    spec.platform = Gem::Platform.new(platform)
    spec.extensions = [] # else Specification#files adds extconf.rb back
    spec.required_ruby_version = ruby_range(apis)
    spec.files = GEMSPEC.files.grep_v(%r{\A(ext/|Cargo\.)}) +
                 apis.map { |api| "lib/unicorn/forksafe/#{api}/forksafe_native.so" }
  end
end

# From the first minor to before the one after the last: %w[3.1 3.3 3.4]
# gives [">= 3.1", "< 3.5.dev"] (.dev: no 3.5 preview either).
def ruby_range(apis)
  first, last = apis.map { |api| Gem::Version.new(api) }.minmax
  major, minor = last.segments
  [">= #{first}", "< #{major}.#{minor + 1}.dev"]
end

# Packs the gem's files, with the libraries of PLATFORM_LIBS/PLATFORM, in a
# stage of their own (the checkout's lib/ may hold other builds), then
# moves the gem to INTO (pkg/).
def build_fat_gem(platform, apis = PLATFORM_APIS, into: "pkg")
  spec = fat_gem_spec(platform, apis)
  stage = stage_fat_gem(spec, File.join(PLATFORM_LIBS, platform))
  built = Dir.chdir(stage) { Gem::Package.build(spec) }
  FileUtils.mkdir_p(into)
  gem = File.join(into, File.basename(fat_gem_path(platform)))
  FileUtils.mv(File.join(stage, built), gem)
  puts "gem:platforms: #{gem} (#{File.size(gem)} bytes, Ruby #{apis.join(", ")})"
end

# The stage of a fat gem: the checkout's files, the libraries from LIBS/API.
def stage_fat_gem(spec, libs)
  stage = File.join(PLATFORM_STAGE, spec.platform.to_s)
  FileUtils.rm_rf(stage)
  spec.files.each do |file|
    source = file.end_with?(".so") ? file.sub("lib/unicorn/forksafe", libs) : file
    abort "gem:platforms: missing #{source}" unless File.file?(source)

    FileUtils.mkdir_p(File.dirname(File.join(stage, file)))
    FileUtils.cp(source, File.join(stage, file))
  end
  stage
end

# The library for Ruby API into LIBS/API/: built on the host when it is the
# host's Ruby, else in the Debian 13 root that has that Ruby (its own build,
# copied out of the root's lib/ through bin/debian13's OUTDIR).
def build_x86_64_lib(libs, api)
  FileUtils.rm_rf(File.join(libs, api))
  FileUtils.mkdir_p(File.join(libs, api))
  return build_host_lib(File.join(libs, api)) if api == RUBY_VERSION[/\A\d+\.\d+/]

  env = PLATFORM_ROOTS.fetch(api) { abort "gem:x86_64_libs: neither the host nor a Debian 13 root has Ruby #{api}" }
  copy = "cp lib/unicorn/forksafe/#{api}/forksafe_native.so /out/#{api}/"
  outside_bundle_env { sh env, "bin/debian13", libs, "--", "sh", "-ec", copy }
end

# What a source gem's install does (extconf.rb, make), in a build directory
# of its own, the checkout's lib/ left alone; the target dir is the
# workspace's (the Rakefile's CARGO_TARGET_DIR), so it rebuilds little.
def build_host_lib(into)
  build = File.join(PLATFORM_LIBS, "build", RUBY_VERSION[/\A\d+\.\d+/])
  FileUtils.mkdir_p(build)
  Dir.chdir(build) do
    sh RbConfig.ruby, File.expand_path("../ext/forksafe_native/extconf.rb", __dir__)
    sh "make", "--no-print-directory"
  end
  FileUtils.cp(File.join(build, "forksafe_native.so"), into)
end

def outside_bundle_env(&) = defined?(Bundler) ? Bundler.with_original_env(&) : yield

namespace :gem do
  desc "The x86_64 extension for Ruby #{PLATFORM_APIS.join(", ")}: #{PLATFORM_LIBS}/x86_64-linux/API/" \
       "forksafe_native.so (the host's Ruby here, the others in Debian 13 roots: bin/debian13, root only)"
  task :x86_64_libs do
    PLATFORM_APIS.each { |api| build_x86_64_lib(File.join(PLATFORM_LIBS, "x86_64-linux"), api) }
  end

  # The package check's fat gem that lacks a Ruby: rake "gem:fat[x86_64-linux,3.1 3.3,DIR]"
  # packs the libraries gem:platforms built for those Rubies into DIR.
  task :fat, %i[platform apis into] do |_, args|
    build_fat_gem(args.fetch(:platform), args.fetch(:apis).split, into: args.fetch(:into))
  end

  desc "The fat platform gems: #{fat_gem_path("x86_64-linux")}, and the aarch64 one where gem:aarch64_libs " \
       "is defined (Ruby #{PLATFORM_APIS.join(", ")}; builds the libraries first)"
  task platforms: :x86_64_libs do
    build_fat_gem("x86_64-linux")
    next unless Rake::Task.task_defined?("gem:aarch64_libs")

    Rake::Task["gem:aarch64_libs"].invoke
    build_fat_gem("aarch64-linux")
  end
end
