# frozen_string_literal: true

module Support
  # What /proc says of other processes: open fds, resident memory, children
  # and their states (Z: a zombie nobody reaped), threads.
  module ProcTable
    # A thread of a process: its name, its state (R running, S asleep) and
    # the kernel function it sleeps in.
    Task = Struct.new(:name, :state, :wchan) do
      def running? = state == "R"

      def asleep_on_futex? = state == "S" && wchan.start_with?("futex")

      def to_s = "#{name} #{state} #{wchan}"
    end

    def fd_count(pid)
      Dir.children("/proc/#{pid}/fd").size
    end

    def rss_kb(pid)
      Integer(File.read("/proc/#{pid}/status")[/^VmRSS:\s+(\d+)/, 1])
    end

    # `pid` and its children: a server's master and its workers.
    def family(pid)
      [pid, *children_of(pid).keys]
    end

    # {pid => state} of the processes whose parent is `pid`.
    def children_of(pid)
      Dir.glob("/proc/[0-9]*").each_with_object({}) do |dir, children|
        state, parent = stat_fields(dir)
        children[Integer(File.basename(dir))] = state if Integer(parent) == pid
      rescue Errno::ENOENT, Errno::ESRCH
        next # exited while we looked
      end
    end

    def threads_of(pid)
      Dir.glob("/proc/#{pid}/task/*").map do |dir|
        Task.new(File.read("#{dir}/comm").strip, stat_fields(dir).first, File.read("#{dir}/wchan"))
      end
    end

    # The fields of a process's stat after its command name, from its state:
    # [state, ppid, pgrp, session, ...]. `dir` is /proc/PID.
    def stat_fields(dir)
      # The command name, in parentheses, may hold spaces: split after it.
      File.read("#{dir}/stat").rpartition(")").last.split
    end
  end
end
