# shellcheck shell=bash
# What the scripts that run commands in a cached Debian root share
# (bin/aarch64-build, bin/aarch64-run; bin/debian13 can source it too):
# sourced, not run. The caller sets `name` (the prefix of its messages) and
# `log` (the setup log, which lock_root opens on fd 4). Root only.

step() { echo "$name: $*" >&2; }

# Setup output goes to the log; a failure shows its end.
quiet() {
  local status=0
  "$@" >&4 2>&4 || status=$?
  [ "$status" = 0 ] && return
  { echo "$name: failed ($status): $*; the end of $log:"; tail -n 30 "$log"; } >&2
  exit "$status"
}

# Ends every process whose root is DIR: all that a run started in it,
# servers and the children they forked included. The private mount
# namespace, and so every mount of the run, goes with the last of them.
reap() {
  local sig pids p
  for sig in TERM KILL; do
    pids=()
    for p in /proc/[0-9]*; do
      if [ "$(readlink "$p/root" 2>/dev/null)" = "$1" ]; then pids+=("${p#/proc/}"); fi
    done
    [ ${#pids[@]} -gt 0 ] || return 0
    kill -s "$sig" "${pids[@]}" 2>/dev/null || true
    sleep 1
  done
}

# in_root DIR OUT COMMAND...: COMMAND chrooted in DIR, in a private mount
# namespace: the mounts exist only in there and go when its processes do.
# OUT, if not empty, is DIR/out inside. It runs in the background so that a
# TERM sent to the script is handled at once (a trap waits for a foreground
# child) and reaps the root.
in_root() {
  local dir=$1 out=$2 child status=0
  shift 2
  # A background job's stdin would be /dev/null, its INT and QUIT ignored.
  # Should the script be killed outright (KILL), the command dies with it.
  { exec 3<&0; } 2>/dev/null || exec 3</dev/null
  # shellcheck disable=SC2016 # expanded by the inner sh
  setpriv --pdeathsig KILL env --default-signal=INT,QUIT unshare --mount --propagation private -- sh -euc '
    dir=$1 out=$2
    shift 2
    mount --rbind /dev "$dir/dev"
    mount -t proc proc "$dir/proc"
    mount --rbind /sys "$dir/sys"
    mount -t tmpfs tmpfs "$dir/tmp"
    if [ -n "$out" ]; then mount --bind "$out" "$dir/out"; fi
    exec chroot "$dir" "$@"' sh "$dir" "$out" "$@" <&3 3<&- &
  child=$!
  exec 3<&-
  trap 'kill $child 2>/dev/null; reap "$dir"; exit 130' INT
  trap 'kill $child 2>/dev/null; reap "$dir"; exit 143' TERM
  trap 'kill $child 2>/dev/null; reap "$dir"; exit 129' HUP
  wait "$child" || status=$?
  trap - INT TERM HUP
  reap "$dir" # what the command left running, e.g. orphaned children
  return "$status"
}

# The host's own Debian mirror, from its apt configuration: the registry
# this machine reaches. The security archive has no base system.
mirror() {
  {
    sed -n 's/^URIs:[[:space:]]*//p' /etc/apt/sources.list.d/*.sources 2>/dev/null | tr -s ' \t' '\n' || true
    sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]\+\).*/\2/p' /etc/apt/sources.list 2>/dev/null || true
  } | grep -E '^(https?|ftp)://' | grep -v -- '-security' | sed -n 1p
}

# lock_root ROOT: one run at a time on ROOT (fd 9), the setup log open on
# fd 4, and what a run killed outright left in ROOT ended (its mounts live
# on with it). The command run in the root must close fds 4 and 9.
lock_root() {
  mkdir -p "$(dirname "$1")"
  exec 9>"$1.lock"
  flock -n 9 || { step "waiting for another run on $1"; flock 9; }
  exec 4>"$log"
  reap "$1"
}

# host_packages PACKAGE...: installs on the host what is missing of them.
host_packages() {
  local missing="" pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
  done
  [ -n "$missing" ] || return 0
  step "installing on the host:$missing"
  quiet apt-get update -qq
  # shellcheck disable=SC2086 # the list splits into words
  quiet env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
}

# new_root ROOT: an empty directory beside ROOT to build it in, printed;
# renamed to ROOT when complete, so a cut-short build is never taken for a
# root (the next call removes it).
new_root() {
  local tmp
  rm -rf --one-file-system "$1".new.*
  tmp=$(mktemp -d "$1.new.XXXXXX")
  chmod 755 "$tmp" # it becomes /, which unprivileged users must traverse
  echo "$tmp"
}

# copy_project REPO DIR: the project as git sees it (tracked, and new files
# not ignored) in DIR, in place of the previous copy. tar keeps the mtimes,
# by which cargo finds that nothing changed; a file deleted but still
# tracked is skipped.
copy_project() {
  rm -rf --one-file-system "$2"
  mkdir -p "$2"
  git -C "$1" ls-files -z -co --exclude-standard |
    tar -C "$1" --null -T - --ignore-failed-read --warning=no-failed-read -cf - |
    tar -C "$2" -xf -
}
