# frozen_string_literal: true

module Support
  # What /proc says of other processes: open fds, resident memory, children
  # and their states (Z: a zombie nobody reaped).
  module ProcTable
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
      Dir.glob("/proc/[0-9]*/stat").each_with_object({}) do |path, children|
        # The command name, in parentheses, may hold spaces: split after it.
        fields = File.read(path).rpartition(")").last.split
        children[Integer(path[%r{/proc/(\d+)/}, 1])] = fields[0] if Integer(fields[1]) == pid
      rescue Errno::ENOENT, Errno::ESRCH
        next # exited while we looked
      end
    end
  end
end
