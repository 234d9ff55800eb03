# frozen_string_literal: true

require "fileutils"
require "open3"
require "rbconfig"
require "tmpdir"

# Where the gem finds its native extension, in a fresh Ruby loading a copy of
# lib/: first the directory of its Ruby version (a platform gem, rake
# compile), then next to native.rb (a source gem's install); missing from
# both, a LoadError that says what is missing and the command that builds it.
RSpec.describe "loading the native extension" do
  let(:library) { "forksafe_native.#{RbConfig::CONFIG["DLEXT"]}" }
  # What spec_helper loaded, built by rake compile.
  let(:built) { $LOADED_FEATURES.grep(%r{/#{Regexp.escape(library)}\z}).first }

  around do |example|
    Dir.mktmpdir("forksafe-install") do |dir|
      @root = File.realpath(dir)
      FileUtils.cp_r(File.expand_path("../lib", __dir__), @root)
      FileUtils.rm(Dir[File.join(@root, "lib/**/#{library}")])
      example.run
    end
  end

  let(:plain_dir) { File.join(@root, "lib/unicorn/forksafe") }
  let(:versioned_dir) { File.join(plain_dir, RUBY_VERSION[/\A\d+\.\d+/]) }

  def place(dir, content = File.binread(built))
    FileUtils.mkdir_p(dir)
    File.binwrite(File.join(dir, library), content)
  end

  # Requires the copy in a Ruby that knows nothing of this bundle: what it
  # loaded, or the LoadError's message.
  def require_copy
    env = ENV.keys.grep(/\A(BUNDLER?_.*|RUBYOPT|RUBYLIB)\z/).to_h { |name| [name, nil] }
    out, _status = Open3.capture2e(env, RbConfig.ruby, "-I", File.join(@root, "lib"), "-e", <<~RUBY, chdir: @root)
      begin
        require "unicorn/forksafe"
        puts $LOADED_FEATURES.grep(/forksafe_native/)
      rescue LoadError => e
        puts "LoadError: \#{e.message}"
      end
    RUBY
    out
  end

  it "loads the library built for this Ruby's minor version first" do
    place(versioned_dir)
    place(plain_dir)
    expect(require_copy).to eq("#{versioned_dir}/#{library}\n")
  end

  it "falls back to the library a source gem's install builds next to native.rb" do
    place(plain_dir)
    expect(require_copy).to eq("#{plain_dir}/#{library}\n")
  end

  it "without either, says what is missing, where it looked and that gem pristine builds it" do
    expect(require_copy).to eq(<<~TEXT)
      LoadError: unicorn-forksafe: its native extension for Ruby #{RUBY_VERSION} is missing: no #{library} in #{versioned_dir} nor in #{plain_dir}.
      Build it with: gem pristine unicorn-forksafe (in a bundle: bundle pristine unicorn-forksafe)
      (cannot load such file -- #{versioned_dir}/forksafe_native; cannot load such file -- #{plain_dir}/forksafe_native)
    TEXT
  end

  # A fat platform gem's required_ruby_version spans minors it does not
  # carry (3.2, between 3.1 and 3.3).
  it "in a platform gem without this Ruby's library, names the Rubies it carries and the source gem" do
    %w[2.7 9.8].each { |version| place(File.join(plain_dir, version)) }
    expect(require_copy).to include(
      "\nThis platform gem carries it for Ruby 2.7, 9.8 only. Take the source gem instead (it builds it with " \
      "Rust): bundle config set force_ruby_platform true, or gem install --platform ruby\n"
    )
  end

  # As on a system older than the one it was built for: the library's
  # needed glibc versions renamed past any there is.
  it "with a library that needs a newer glibc, raises the loader's error and names the source gem" do
    place(versioned_dir, File.binread(built).gsub("GLIBC_2.", "GLIBC_9."))
    out = require_copy
    expect(out).to match(/\ALoadError: .*version `GLIBC_9\.[\d.]+' not found/)
    expect(out).to include("this platform gem needs a newer glibc than this system's. Take the source gem instead")
  end

  it "in a checkout, names rake compile as the command" do
    FileUtils.touch(File.join(@root, "unicorn-forksafe.gemspec"))
    expect(require_copy).to include("\nBuild it in #{@root} with: bundle exec rake compile\n")
  end

  { "in the versioned directory" => :versioned_dir, "next to native.rb" => :plain_dir }.each do |where, dir|
    it "raises a library #{where} that does not load as it is, not as missing" do
      place(send(dir), "not a shared library\n")
      out = require_copy
      expect(out).to start_with("LoadError: #{send(dir)}/#{library}: ")
      expect(out).not_to include("is missing", "cannot load such file")
    end
  end
end
