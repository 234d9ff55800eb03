# frozen_string_literal: true

require "fileutils"
require "json"
require "open3"
require "rbconfig"
require "tmpdir"

# Where the child's pass cannot be built (macOS, the BSDs, Linux with no
# platform gem for its Ruby and no Rust), the gem installs, loads with fork
# protection off, says so once through the logger, and keeps the server's
# half: ForkSafe::Native is a stand-in in Ruby (native_stand_in.rb).
# FORKSAFE_PLATFORM=unsupported forces that branch on Linux, at install
# (extconf.rb) and at load (native.rb).

# The examples live in this module, for its constants: this checkout, the
# environment of a Ruby outside this bundle, the app puma serves.
module ProtectionOff # rubocop:disable Metrics/ModuleLength (the examples, in its lexical scope)
  ROOT = File.expand_path("..", __dir__)
  LIB = File.join(ROOT, "lib")
  EXTCONF = File.join(ROOT, "ext/forksafe_native/extconf.rb")
  GEM = File.join(RbConfig::CONFIG["bindir"], "gem")
  OFF_LINE = /forksafe: fork protection is off on this platform: /
  # The environment of a Ruby that knows nothing of this bundle.
  UNBUNDLED = ENV.keys.grep(/\A(BUNDLER?_.*|RUBYOPT|RUBYLIB)\z/).to_h { |name| [name, nil] }.freeze

  # The app puma serves.
  PUMA_APP = <<~'RUBY'
    # GET /            what the gem loaded, and why protection is off
    # GET /fork?via=kernel|forksafe|detach&life=S
    #   forks a child living S seconds; it reports, before the response,
    #   whom its copy of the request's socket is connected to, and its role
    require "json"
    require "socket"
    require "uri"
    require "unicorn/forksafe"

    def fork_child(env)
      params = URI.decode_www_form(env["QUERY_STRING"]).to_h
      socket = env.fetch("puma.socket")
      reader, writer = IO.pipe
      body = proc do
        reader.close
        peer = begin
          socket.remote_address.inspect_sockaddr
        rescue SystemCallError => e
          e.class.name
        end
        writer.write(JSON.generate(peer:, role: ForkSafe.role, pid: Process.pid))
        writer.close
        sleep Float(params.fetch("life"))
        exit!(0)
      end
      pid = case params["via"]
            when "forksafe" then ForkSafe.fork(&body)
            when "detach" then ForkSafe.fork(detach: true, &body)
            else fork(&body)
            end
      Process.detach(pid) unless params["via"] == "detach"
      writer.close
      reader.read.tap { reader.close }
    end

    run lambda { |env|
      body = case env["PATH_INFO"]
             when "/fork" then fork_child(env)
             else JSON.generate(loaded: $LOADED_FEATURES.grep(/forksafe_native|native_stand_in/),
                                off: ForkSafe::NativeLoader.off_reason, role: ForkSafe.role, pid: Process.pid)
             end
      [200, { "content-type" => "application/json" }, [body]]
    }
  RUBY

  # PATH without any directory that has cargo, as on a machine without Rust.
  def self.path_without_cargo
    ENV.fetch("PATH").split(File::PATH_SEPARATOR)
       .reject { |dir| File.executable?(File.join(dir, "cargo")) }.join(File::PATH_SEPARATOR)
  end

  RSpec.describe "a platform where the child's pass cannot be built" do
    # Runs a script in a fresh Ruby with this checkout's lib/ on the load path
    # and protection forced off: [stdout, stderr], raising if it failed.
    def fresh_ruby(script, env: {}, lib: LIB)
      out, err, status = Open3.capture3(UNBUNDLED.merge("FORKSAFE_PLATFORM" => "unsupported", **env),
                                        RbConfig.ruby, "-I", lib, "-rjson", "-e", script)
      raise "the script failed (#{status.inspect}):\n#{out}#{err}" unless status.success?

      [out, err]
    end

    # The same, for a script that prints JSON last: that JSON, parsed.
    # A process that serves, with its listener (`server`) open.
    serving = <<~RUBY
      require "socket"
      require "unicorn/forksafe"
      ForkSafe.config.logger = Logger.new(File::NULL)
      ForkSafe.serving(nil)
      server = TCPServer.new("127.0.0.1", 0)
    RUBY

    def fresh_json(script, **options)
      JSON.parse(fresh_ruby(script, **options).first.lines.last)
    end

    describe "in a fresh Ruby with FORKSAFE_PLATFORM=unsupported" do
      it "loads the stand-in, not the native library, and says nothing while it loads" do
        out, err = fresh_ruby(<<~RUBY)
          require "unicorn/forksafe"
          puts JSON.generate(loaded: $LOADED_FEATURES.grep(/forksafe_native|native_stand_in/).map { File.basename(_1) },
                             off: ForkSafe::NativeLoader.off_reason, role: ForkSafe.role, serving: ForkSafe.serving?,
                             stats: ForkSafe.stats, sockets: ForkSafe.sockets, last_pass: ForkSafe.last_pass)
        RUBY
        expect(JSON.parse(out)).to eq(
          "loaded" => ["native_stand_in.rb"], "off" => "FORKSAFE_PLATFORM=unsupported is set", "role" => "unknown",
          "serving" => false, "stats" => { "forks" => 0, "clients_neutralized" => 0, "listeners_released" => 0 },
          "sockets" => [], "last_pass" => nil
        )
        expect(err).to eq("")
      end

      it "has the native core's module functions" do
        names = fresh_json(<<~RUBY)
          require "unicorn/forksafe"
          puts JSON.generate(ForkSafe::Native.singleton_methods.sort)
        RUBY
        expect(names).to eq(ForkSafe::Native.singleton_methods.map(&:to_s).sort)
      end

      it "says once, through the server's logger, when the process first takes a role, and never in its workers" do
        out, err = fresh_ruby(<<~RUBY)
          require "logger"
          require "unicorn/forksafe"
          server_log = Logger.new($stdout, formatter: ->(severity, _, _, message) { "\#{severity} \#{message}\\n" })
          puts "loaded"
          ForkSafe.master(server_log)
          ForkSafe.master(server_log)
          worker = ForkSafe.server_fork { fork { ForkSafe.serving(server_log); ForkSafe.request { nil }; exit!(0) } }
          Process.wait(worker)
          ForkSafe.serving(server_log)
          ForkSafe.request { nil }
          Process.wait(ForkSafe.fork { exit!(0) })
        RUBY
        expect(out.lines.first).to eq("loaded\n")
        expect(out.lines.drop(1)).to match([a_string_starting_with("WARN forksafe: fork protection is off on this " \
                                                                   "platform: FORKSAFE_PLATFORM=unsupported is set. ")])
        expect(err).to eq("")
      end

      it "says it when a process that knows no server asks for a pass, through the default logger" do
        _out, err = fresh_ruby(<<~RUBY)
          require "unicorn/forksafe"
          Process.wait(ForkSafe.fork { exit!(0) })
          Process.wait(ForkSafe.fork { exit!(0) })
        RUBY
        expect(err.lines.grep(OFF_LINE).size).to eq(1)
        expect(err).to include("shutdown before close still ends each connection the server closes, " \
                               "and ForkSafe.fork is a plain fork")
      end

      it "keeps roles in the process: they rise, and a child starts knowing none" do
        roles = fresh_json(<<~RUBY)
          require "unicorn/forksafe"
          ForkSafe.config.logger = Logger.new(File::NULL)
          def child_role(&fork)
            reader, writer = IO.pipe
            pid = fork.call { reader.close; writer.write(ForkSafe.role); exit!(0) }
            writer.close
            reader.read.tap { Process.wait(pid) }
          end
          roles = [ForkSafe.role]
          ForkSafe.master(nil)
          roles << ForkSafe.role << child_role { |&b| ForkSafe.server_fork { fork(&b) } }
          ForkSafe.request { roles << ForkSafe.role }
          roles << ForkSafe.master(nil) << child_role { |&b| ForkSafe.fork(&b) }
          puts JSON.generate(roles: roles, stats: ForkSafe.stats)
        RUBY
        expect(roles).to eq("roles" => %w[unknown master unknown serving serving unknown],
                            "stats" => { "forks" => 0, "clients_neutralized" => 0, "listeners_released" => 0 })
      end

      it "forks plainly: the child still holds the client, and ForkSafe.fork keeps its contract and its errors" do
        result = fresh_json(serving + <<~RUBY)
          client = TCPSocket.new("127.0.0.1", server.addr[1])
          accepted = server.accept
          peer = ->(&fork) do
            reader, writer = IO.pipe
            pid = fork.call { reader.close; writer.write(accepted.remote_address.inspect_sockaddr); exit!(0) }
            writer.close
            reader.read.tap { Process.wait(pid) if pid }
          end
          grandchild = peer.call { |&b| ForkSafe.fork(detach: true, &b).tap { sleep 0.2 } && nil }
          blockless = ForkSafe.fork
          exit!(7) unless blockless
          errors = [-> { ForkSafe.fork(listeners: :x) }, -> { ForkSafe.fork(detach: 1) },
                    -> { ForkSafe.fork(keep: "x") }].map do |call|
            call.call
          rescue ArgumentError, TypeError => e
            "\#{e.class}: \#{e.message}"
          end
          puts JSON.generate(client: client.local_address.inspect_sockaddr, parent: accepted.remote_address.inspect_sockaddr,
                             kernel_fork: peer.call { |&b| fork(&b) }, forksafe_fork: peer.call { |&b| ForkSafe.fork(&b) },
                             kept: peer.call { |&b| ForkSafe.fork(keep: accepted, &b) }, handed_off: ForkSafe.handed_off?(accepted),
                             detached: grandchild, blockless: Process.wait2(blockless).last.exitstatus, errors: errors)
        RUBY
        client = result.delete("client")
        expect(result).to eq("parent" => client, "kernel_fork" => client, "forksafe_fork" => client, "kept" => client,
                             "handed_off" => true, "detached" => client, "blockless" => 7,
                             "errors" => ["ArgumentError: listeners: must be :release or :keep, got :x",
                                          "ArgumentError: detach: must be true or false, got 1",
                                          "TypeError: keep element: expected an Integer file descriptor or an IO, " \
                                          "got String"])
      end

      it "shuts a connection down before the server closes it (BasicSocket#shutdown): EOF while a child holds it" do
        result = fresh_json(serving + <<~RUBY)
          eof = lambda do |writes_first: false, keep: false|
            client = TCPSocket.new("127.0.0.1", server.addr[1])
            accepted = server.accept
            child = ForkSafe.fork(keep: keep ? accepted : []) { sleep 3; exit!(0) }
            ForkSafe.closing(accepted, writes_first:) { accepted.write("bye") if writes_first; accepted.close }
            got = +""
            loop do
              break got << "|waiting" unless IO.select([client], nil, nil, 1)

              chunk = client.read_nonblock(16, exception: false)
              break got << "|eof" unless chunk
              got << chunk if chunk.is_a?(String)
            end
            Process.kill(:KILL, child)
            Process.wait(child)
            got
          end
          errors = [0, 999_999].map do |fd|
            ForkSafe::Native.shutdown(fd)
          rescue ArgumentError => e
            e.message
          end
          puts JSON.generate(plain: eof.call, writes_first: eof.call(writes_first: true), kept: eof.call(keep: true),
                             errors: errors)
        RUBY
        expect(result).to eq("plain" => "|eof", "writes_first" => "bye|eof", "kept" => "|waiting",
                             "errors" => ["fd: 0 is not a socket", "fd: 999999 is not an open file descriptor"])
      end

      it "answers the role calls and requests with the native core's argument errors, and refuses the pass itself" do
        result = fresh_json(<<~RUBY)
          require "unicorn/forksafe"
          reader, = IO.pipe
          calls = [-> { ForkSafe::Native.rise_to(:boss, nil) }, -> { ForkSafe::Native.rise_to("master", nil) },
                   -> { ForkSafe.request("x") { nil } }, -> { ForkSafe.request(reader) { nil } },
                   -> { ForkSafe.request(999_999) { nil } }, -> { ForkSafe::Native.request_end(-1) },
                   -> { ForkSafe::Native.arm_pass([3, "x"], true) }, -> { ForkSafe::Native.neutralize(0) },
                   -> { ForkSafe::Native.child_pass([], true, []) }, -> { ForkSafe::Native.open_fds }]
          results = calls.map do |call|
            call.call
          rescue StandardError, NotImplementedError => e
            "\#{e.class}: \#{e.message}"
          end
          puts JSON.generate(results << ForkSafe.role)
        RUBY
        off = "fork protection is off (FORKSAFE_PLATFORM=unsupported is set)"
        expect(result).to match([
                                  "ArgumentError: role: must be :master or :serving, got :boss", /\ATypeError: /,
                                  /\ATypeError: socket: expected/,
                                  /\AArgumentError: socket: #<IO:fd \d+> is not a socket/,
                                  "ArgumentError: socket: 999999 is not an open file descriptor", /\ARangeError: /,
                                  /\ATypeError: /, "NotImplementedError: ForkSafe::Native.neutralize: #{off}",
                                  "NotImplementedError: ForkSafe::Native.child_pass: #{off}",
                                  "NotImplementedError: ForkSafe::Native.open_fds: #{off}", "unknown"
                                ])
      end

      it "refuses any other FORKSAFE_PLATFORM, naming it" do
        _out, err, status = Open3.capture3(UNBUNDLED.merge("FORKSAFE_PLATFORM" => "unsuported"),
                                           RbConfig.ruby, "-I", LIB, "-e", 'require "unicorn/forksafe"')
        expect(status.success?).to be(false)
        expect(err).to include('FORKSAFE_PLATFORM must be "unsupported" or unset, not "unsuported" (ForkSafe::Error)')
      end

      it "turns protection off in an install that built no extension, with the reason it left" do
        Dir.mktmpdir("forksafe-off") do |dir|
          FileUtils.cp_r(LIB, dir)
          FileUtils.rm(Dir[File.join(dir, "lib/**/forksafe_native.#{RbConfig::CONFIG["DLEXT"]}")])
          File.write(File.join(dir, "lib/unicorn/forksafe/forksafe_native.off"), "cargo was not found\n")
          off = fresh_json(<<~RUBY, env: { "FORKSAFE_PLATFORM" => nil }, lib: File.join(dir, "lib"))
            require "unicorn/forksafe"
            puts JSON.generate([ForkSafe::NativeLoader.off_reason, $LOADED_FEATURES.grep(/forksafe_native\\./)])
          RUBY
          expect(off).to eq(["the gem was installed without its native extension, because cargo was not found", []])
        end
      end
    end

    describe "extconf.rb" do
      around do |example|
        Dir.mktmpdir("forksafe-extconf") do |dir|
          @dir = dir
          example.run
        end
      end

      # Runs extconf.rb, make and make install (into the directory's inst/)
      # with PATH `path`: what each printed.
      def configure_and_make(env, path: ProtectionOff.path_without_cargo)
        env = UNBUNDLED.merge("PATH" => path, "CARGO" => nil, **env)
        %w[extconf make install].map do |step|
          command = step == "extconf" ? [RbConfig.ruby, EXTCONF] : ["make"]
          command += ["install", "sitearchdir=#{@dir}/inst"] if step == "install"
          out, status = Open3.capture2e(env, *command, chdir: @dir)
          raise "#{step} failed: #{out}" unless status.success?

          out
        end
      end

      def installed
        Dir.glob("**/*", base: File.join(@dir, "inst")).to_h do |path|
          file = File.join(@dir, "inst", path)
          [path, File.file?(file) ? File.read(file) : :dir]
        end
      end

      it "with FORKSAFE_PLATFORM=unsupported, writes a Makefile that builds nothing, says why, and leaves the reason" do
        extconf, make, = configure_and_make({ "FORKSAFE_PLATFORM" => "unsupported" }, path: ENV.fetch("PATH"))
        said = "unicorn-forksafe: no native extension built: FORKSAFE_PLATFORM=unsupported was set at install. " \
               "The gem runs with fork protection off: shutdown before close still works, " \
               "ForkSafe.fork is a plain fork."
        expect([extconf, make]).to eq(["#{said}\n"] * 2)
        expect(installed).to eq("unicorn" => :dir, "unicorn/forksafe" => :dir,
                                "unicorn/forksafe/forksafe_native.off" =>
                                  "FORKSAFE_PLATFORM=unsupported was set at install\n")
        expect(File.exist?(File.join(@dir, "target"))).to be(false)
      end

      it "without cargo on PATH, builds nothing and names the command that builds it once Rust is there" do
        expect(Open3.capture2e({ "PATH" => ProtectionOff.path_without_cargo }, "sh", "-c", "command -v cargo").last)
          .not_to be_success
        configure_and_make({})
        expect(installed["unicorn/forksafe/forksafe_native.off"]).to eq(
          "cargo was not found on PATH at install (with Rust installed, `gem pristine unicorn-forksafe` " \
          "or `bundle pristine unicorn-forksafe` builds it)\n"
        )
      end

      it "fails on any other FORKSAFE_PLATFORM, naming it" do
        out, status = Open3.capture2e(UNBUNDLED.merge("FORKSAFE_PLATFORM" => "macos"), RbConfig.ruby,
                                      EXTCONF, chdir: @dir)
        expect([status.success?, out]).to eq(
          [false, %(unicorn-forksafe: FORKSAFE_PLATFORM must be "unsupported" or unset, not "macos"\n)]
        )
        expect(File.exist?(File.join(@dir, "Makefile"))).to be(false)
      end
    end

    # The source gem, built from this checkout, installed with
    # FORKSAFE_PLATFORM=unsupported into an empty GEM_HOME with no cargo on
    # PATH, and served by Debian's puma, which comes from the system's gems.
    # The server runs without FORKSAFE_PLATFORM: the installed gem goes off
    # by itself.
    describe "the source gem installed without cargo, under puma" do
      before(:context) do
        @home = Dir.mktmpdir("forksafe-unsupported")
        @gem_home = File.join(@home, "gems")
        @installed = install_source_gem
      end

      after(:context) { FileUtils.rm_rf(@home) }

      # Builds the source gem and installs it as the issue describes; returns
      # `gem install`'s output.
      def install_source_gem
        file = build_source_gem(File.join(@home, "source"))
        run!(gem_env("FORKSAFE_PLATFORM" => "unsupported", "PATH" => ProtectionOff.path_without_cargo),
             GEM, "install", "--local", "--no-document", file, chdir: @home)
      end

      # From a copy of the gemspec's files (pkg/ is rake's, and others'):
      # the gem's path.
      def build_source_gem(source)
        spec = Gem::Specification.load(File.join(ROOT, "unicorn-forksafe.gemspec"))
        (spec.files + ["unicorn-forksafe.gemspec"]).each do |file|
          FileUtils.mkdir_p(File.dirname(File.join(source, file)))
          FileUtils.cp(File.join(ROOT, file), File.join(source, file))
        end
        built = run!(UNBUNDLED, GEM, "build", "--quiet", "unicorn-forksafe.gemspec", chdir: source)
        File.join(source, built[/File: (\S+)/, 1])
      end

      def run!(env, *command, chdir:)
        out, status = Open3.capture2e(env, *command, chdir:)
        raise "#{command.join(" ")} failed:\n#{out}" unless status.success?

        out
      end

      # The gem from the empty GEM_HOME first, then the system's (puma, rack).
      def gem_env(more = {})
        UNBUNDLED.merge("GEM_HOME" => @gem_home, "CARGO" => nil,
                        "GEM_PATH" => [@gem_home, *Gem.default_path].join(File::PATH_SEPARATOR), **more)
      end

      def installed_gem_dir
        Dir[File.join(@gem_home, "gems", "unicorn-forksafe-*")].first or raise "the gem is not installed"
      end

      # Cluster mode preloads the app: the gem loads in the master, as a Rails
      # app's preload_app! has it. (Without it each worker loads the gem, and
      # each says it once.)
      def boot_puma(workers:)
        dir = Dir.mktmpdir("forksafe-e2e")
        File.write(File.join(dir, "config.ru"), PUMA_APP)
        port = free_port
        server = start_server(dir, port, gem: true, lib: nil, env: gem_env("FORKSAFE_PLATFORM" => nil),
                                         command: [executable("puma"), "-e", "production", "-t", "2:2",
                                                   "-w", workers.to_s, *("--preload" if workers.positive?),
                                                   "-b", "tcp://127.0.0.1:#{port}", "config.ru"])
        wait_for_log(server, /Worker \d+ \(PID: \d+\) booted/, workers) if workers.positive?
        server
      end

      # [seconds to EOF, parsed body] of a request that reads until EOF.
      def get(server, path)
        seconds, response = http_get(server.port, path)
        expect(status_of(response)).to eq("200")
        [seconds, JSON.parse(response.partition("\r\n\r\n").last)]
      end

      let(:reason) do
        "the gem was installed without its native extension, because FORKSAFE_PLATFORM=unsupported was set at install"
      end

      it "installs without compiling Rust: no library, no build output, the reason left where the library would be" do
        files = Dir.glob("**/*", base: installed_gem_dir)
        expect(@installed).to include("Successfully installed unicorn-forksafe-#{ForkSafe::VERSION}")
        expect(files.grep(%r{forksafe_native\.(so|bundle)\z|(\A|/)target\z})).to eq([])
        expect(File.read(File.join(installed_gem_dir, "lib/unicorn/forksafe/forksafe_native.off")))
          .to eq("FORKSAFE_PLATFORM=unsupported was set at install\n")
        make_out = Dir[File.join(@gem_home, "extensions", "**", "gem_make.out")].map { |f| File.read(f) }.join
        expect(make_out).to include("unicorn-forksafe: no native extension built: FORKSAFE_PLATFORM=unsupported")
      end

      it "boots single-mode puma, serves, says it once, and a fork in a request is plain while the client gets EOF" do
        server = boot_puma(workers: 0)
        _, root = get(server, "/")
        expect(root).to eq("loaded" => [File.join(installed_gem_dir, "lib/unicorn/forksafe/native_stand_in.rb")],
                           "off" => reason, "role" => "serving", "pid" => server.pid)
        %w[kernel forksafe detach].each do |via|
          seconds, child = get(server, "/fork?via=#{via}&life=5")
          expect(child["peer"]).to match(/\A127\.0\.0\.1:\d+\z/) # the client's connection, not a dead end
          expect(child["role"]).to eq("unknown")
          expect(seconds).to be < 2 # the child lives 5 s: shutdown before close ended the connection
        end
        said = File.readlines(server.log).grep(OFF_LINE)
        expect(said).to match([a_string_including("fork protection is off on this platform: #{reason}.")])
      end

      it "boots cluster-mode puma: the master says it once for its workers, which serve and fork plainly" do
        server = boot_puma(workers: 2)
        pids = Array.new(6) { get(server, "/").last.fetch("pid") }.uniq
        expect(pids).not_to include(server.pid)
        seconds, child = get(server, "/fork?via=kernel&life=5")
        expect(child["peer"]).to match(/\A127\.0\.0\.1:\d+\z/)
        expect(seconds).to be < 2
        expect(File.readlines(server.log).grep(OFF_LINE).size).to eq(1)
      end
    end
  end
end
