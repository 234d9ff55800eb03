# frozen_string_literal: true

require_relative "fork"

module ForkSafe
  # Process._fork is what Kernel#fork, Process.fork and IO.popen("-") call
  # since Ruby 3.1. Prepending is idempotent and leaves other hooks in the
  # chain, as ActiveSupport's ForkTracker does; the child's pass runs inside
  # fork itself, so a hook prepended before this one already finds the
  # clients gone in the child.
  module ForkHook
    def _fork
      return super unless ForkSafe.config.fork_hook

      ChildPolicy.planned_fork { super }
    end

    # The daemon is the caller going on: it keeps its client.
    def daemon(...)
      ChildPolicy.without_pass { super }
    end
  end

  # These fork only to exec a program at once, which gets what it is
  # handed (a client redirected to it is a hand-off) and nothing else:
  # Ruby's descriptors are close-on-exec. (Ruby uses vfork for them where
  # it can, which runs no fork handler; as root it forks.)
  module SpawnHook
    def spawn(...)
      ChildPolicy.without_pass { super }
    end
  end

  # Kernel.spawn, system and backticks, on top of spawn. The no-pass plan
  # is the thread's, and lasts while the program is made; system and
  # backticks also wait for it, and under a fiber scheduler that wait runs
  # the thread's other fibers, whose forks (fork(2) from C, which no hook
  # sees) would find the plan still armed. There they are made in two
  # steps: the program spawned without a pass, then waited for outside it.
  module ExecHook
    include SpawnHook

    def system(*args, **options)
      return ChildPolicy.without_pass { super } unless ExecHook.fibers_wait?

      ExecHook.spawn_and_wait(args, **options)
    end

    def `(command)
      return ChildPolicy.without_pass { super } unless ExecHook.fibers_wait?

      IO.popen(command, &:read) # PopenHook: no pass while the program is made
    end

    # This fiber's waits run other fibers of its thread.
    def self.fibers_wait?
      Fiber.scheduler && !Fiber.blocking?
    end

    # Kernel#system as spawn, then wait: true, false, or nil when the
    # program could not be run (exception: true raises instead).
    def self.spawn_and_wait(args, exception: false, **options)
      pid = Process.spawn(*args, **options)
      status = Process.wait2(pid).last
      return true if status.success?
      raise "Command failed with #{status.to_s.sub(/\Apid \d+ /, "")}: #{args.join(" ")}" if exception

      false
    rescue SystemCallError
      raise if exception

      nil
    end
  end

  # Kernel's instance methods stay private.
  module KernelExecHook
    include ExecHook
    private :spawn, :system, :`
  end

  # IO.popen("-") is a fork of Ruby, through _fork; any other command execs.
  # Only the making of the process goes without a pass, not the block: a
  # fork the block makes is the app's.
  module PopenHook
    def popen(*args, **options, &block)
      return super if args.find { |arg| !arg.is_a?(Hash) } == "-"

      io = ChildPolicy.without_pass { super(*args, **options, &nil) }
      return io unless block

      begin
        yield io
      ensure
        io.close unless io.closed?
      end
    end
  end
end

Process.singleton_class.prepend(ForkSafe::ForkHook)
Process.singleton_class.prepend(ForkSafe::SpawnHook)
Kernel.prepend(ForkSafe::KernelExecHook)
Kernel.singleton_class.prepend(ForkSafe::ExecHook)
IO.singleton_class.prepend(ForkSafe::PopenHook)
ForkSafe.config.hook_installed
