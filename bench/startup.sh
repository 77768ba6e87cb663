#!/usr/bin/env bash
# Container start-up cost: runc, runsc (Debian's gVisor) and moat as OCI runtimes,
# in one invocation. Usage: bench/startup.sh [path/to/moat]   (run as root)
#
# What it measures: wall time to run `/bin/true` (a busybox applet) in a fresh
# container, to completion, median of N runs (each with a fresh container id):
#   cli     `<runtime> --root R run --bundle B ID </dev/null >/dev/null`, N=10.
#           B is a busybox bundle under /var/tmp (config.json from `runc spec`,
#           terminal false, args ["/bin/true"], absolute root.path). runsc gets
#           --network=none (without it, it refuses to run in the root network
#           namespace); --ignore-cgroups is not needed on this host.
#   docker  `docker run --rm --network=none --runtime=<runtime> IMG /bin/true`, N=5,
#           after one warm-up run per runtime, against a dockerd this script
#           starts itself (data-root/exec-root under /var/tmp, stopped at exit),
#           with `moat` registered as the given binary and `runsc` with
#           runtimeArgs ["--network=none"]. IMG is imported from a busybox rootfs
#           tarball. This includes the docker CLI, dockerd, containerd and the
#           shim, so it is what a user of `docker run` sees.
#
# How to read it: the table is ms (lower is better); moat/runc and moat/runsc are
# ratios of those medians (1.00x = same cost, below 1 = moat starts faster).
# "-" means that runtime failed or is missing; the reason is printed above the
# table. Numbers move with machine load (printed with the table).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
moat=${1:-$here/../target/release/moat}
[ -x "$moat" ] || { echo "bench: $moat is not an executable (cargo build --release)" >&2; exit 1; }
moat=$(realpath "$moat")  # dockerd needs an absolute path
[ "$(id -u)" = 0 ] || { echo "bench: must run as root (runc/runsc/moat run, dockerd)" >&2; exit 1; }
busybox=/bin/busybox
[ -x "$busybox" ] || { echo "bench: $busybox missing (apt-get install busybox-static)" >&2; exit 1; }
n_cli=10 n_docker=5
runtimes=(runc runsc moat)
start=$SECONDS
# Not /tmp: each sandbox gets its own tmpfs there. Kept short: dockerd's socket is in it.
work=$(mktemp -d -p /var/tmp startup.XXXXXX)
dockerd_pid='' exec_root=''

# Processes whose command line mentions $work (containerd shims, sandboxes left
# behind by a failed run); prints their pids.
our_pids() {
  local p cmd
  for p in /proc/[0-9]*; do
    [ "${p#/proc/}" = "$$" ] && continue
    cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
    if [[ $cmd == *"$work/"* ]] || { [ -n "$exec_root" ] && [[ $cmd == *"$exec_root/"* ]]; }; then
      echo "${p#/proc/}"
    fi
  done
  return 0
}

cleanup() {
  local rc=$? p dir
  if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
    kill -TERM "$dockerd_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$dockerd_pid" 2>/dev/null || true
    wait "$dockerd_pid" 2>/dev/null || true
  fi
  for p in $(our_pids); do kill -KILL "$p" 2>/dev/null || true; done
  # Mounts dockerd may leave (overlay layers, netns/default); deepest first.
  for dir in "$work" ${exec_root:+"$exec_root"}; do
    awk -v w="$dir/" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r |
      while read -r m; do umount -l "$m" 2>/dev/null || true; done
    rm -rf "$dir" 2>/dev/null || echo "bench: could not remove $dir" >&2
  done
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Prints the last non-empty lines of a file (the error, usually), or "(no output)".
last_lines() { grep -v '^[[:space:]]*$' "$1" | tail -"${2:-1}" | grep . || echo "(no output)"; }

# time_runs WHO N CMD...: runs CMD N times ("{}" in its arguments becomes a fresh
# id), prints the median wall time in ms, or "-" after printing the error on stderr.
time_runs() {
  local who=$1 n=$2 i t0 t1 times=() args a; shift 2
  for i in $(seq "$n"); do
    args=()
    for a in "$@"; do args+=("${a//\{\}/st$$-$who-$i}"); done
    t0=${EPOCHREALTIME//[!0-9]/}  # µs, without forking, in any locale
    if ! timeout 60 "${args[@]}" </dev/null >/dev/null 2>"$work/err"; then
      echo "bench: $who failed (run $i of $n): ${args[*]}" >&2
      last_lines "$work/err" 5 | sed 's/^/    /' >&2
      echo "-"
      return 0
    fi
    t1=${EPOCHREALTIME//[!0-9]/}
    times+=("$((t1 - t0))")
  done
  printf '%s\n' "${times[@]}" | sort -n |
    awk '{a[NR] = $1} END {m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.1f\n", m / 1000}'
}

# The busybox rootfs: /bin/busybox plus applet symlinks, enough for /bin/true and a shell.
rootfs=$work/bundle/rootfs
mkdir -p "$rootfs"/{bin,dev,etc,proc,sys,tmp,root}
cp "$busybox" "$rootfs/bin/busybox"
for applet in true sh echo ls cat; do ln -s busybox "$rootfs/bin/$applet"; done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"

declare -A ms
for rt in "${runtimes[@]}"; do ms[cli,$rt]=- ms[docker,$rt]=-; done

# ---- 1. OCI CLI with a bundle
bundle=$work/bundle
if command -v runc >/dev/null; then
  (cd "$bundle" && runc spec)
else
  # Fall back to moat's own default spec (runc is also one of the measured runtimes).
  echo "bench: runc missing (apt-get install runc); config.json from moat spec" >&2
  (cd "$bundle" && "$moat" spec)
fi
jq --arg root "$rootfs" '.process.terminal = false | .process.args = ["/bin/true"] | .root.path = $root' \
  "$bundle/config.json" >"$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"
for rt in "${runtimes[@]}"; do
  state=$work/state-$rt
  mkdir -p "$state"
  case $rt in
    runc) cmd=(runc --root "$state") ;;
    runsc) cmd=(runsc --root "$state" --network=none) ;;
    moat) cmd=("$moat" --root "$state") ;;
  esac
  if ! command -v "${cmd[0]}" >/dev/null; then
    echo "bench: cli $rt skipped: ${cmd[0]} missing (apt-get install $rt)" >&2
    continue
  fi
  ms[cli,$rt]=$(time_runs "cli-$rt" "$n_cli" "${cmd[@]}" run --bundle "$bundle" '{}')
done

# ---- 2. docker run --runtime=X
# Creates a new, empty /var/tmp/XY directory (2 random characters); prints its path.
short_dir() {
  local chars=abcdefghijklmnopqrstuvwxyz0123456789 dir
  for _ in $(seq 200); do
    dir=/var/tmp/${chars:RANDOM % 36:1}${chars:RANDOM % 36:1}
    if mkdir -m 700 "$dir" 2>/dev/null; then echo "$dir"; return 0; fi
  done
  return 1
}
docker_section() {
  if ! command -v dockerd >/dev/null; then
    echo "docker section skipped: dockerd missing (apt-get install docker.io)"
    return 0
  fi
  if ! command -v docker >/dev/null; then
    echo "docker section skipped: docker CLI missing (apt-get install docker.io)"
    return 0
  fi
  local d=$work/d sock=$work/d.sock img=startup-busybox rt
  mkdir -p "$d/data"
  # The exec-root must be tiny: containerd gives each runtime --root
  # <exec-root>/runtime-runc/moby, and moat binds <root>/<64-hex id>/control.sock,
  # which must fit sun_path (107 bytes): 107 - 19 - 64 - 13 leaves 11 bytes, i.e.
  # /var/tmp/ plus 2 characters. (Docker's default /var/run/docker is 15.)
  exec_root=$(short_dir) || { echo "docker section skipped: no free /var/tmp/?? directory"; return 0; }
  jq -n --arg d "$d" --arg x "$exec_root" --arg sock "unix://$sock" --arg moat "$moat" --arg runsc "$(command -v runsc || echo /usr/bin/runsc)" '{
    "data-root": "\($d)/data", "exec-root": $x, "pidfile": "\($d)/dockerd.pid",
    "hosts": [$sock],
    "iptables": false, "ip6tables": false, "ip-forward": false, "ip-masq": false, "bridge": "none",
    "storage-driver": "overlay2", "exec-opts": ["native.cgroupdriver=cgroupfs"],
    "runtimes": {"moat": {"path": $moat}, "runsc": {"path": $runsc, "runtimeArgs": ["--network=none"]}}
  }' >"$d/daemon.json"
  dockerd --config-file "$d/daemon.json" >"$d/dockerd.log" 2>&1 &
  dockerd_pid=$!
  local dk=(docker -H "unix://$sock")
  for _ in $(seq 300); do
    "${dk[@]}" version >/dev/null 2>&1 && break
    kill -0 "$dockerd_pid" 2>/dev/null || break
    sleep 0.1
  done
  if ! "${dk[@]}" version >/dev/null 2>"$work/err"; then
    echo "docker section skipped: dockerd did not come up: $(last_lines "$work/err")"
    last_lines "$d/dockerd.log" 5 | sed 's/^/    /'
    return 0
  fi
  tar -C "$rootfs" -cf "$work/rootfs.tar" .
  if ! "${dk[@]}" import -c 'ENV PATH=/bin' -c 'CMD ["/bin/sh"]' "$work/rootfs.tar" "$img" >/dev/null 2>"$work/err"; then
    echo "docker section skipped: docker import failed: $(last_lines "$work/err")"
    return 0
  fi
  for rt in "${runtimes[@]}"; do
    local run=("${dk[@]}" run --rm --network=none --runtime="$rt" "$img" /bin/true)
    # Sanity check that the container really runs (output and exit status come
    # back), then a warm-up; a runtime that fails either is not measured.
    local out rc=0
    out=$(timeout 60 "${dk[@]}" run --rm --network=none --runtime="$rt" "$img" /bin/sh -c 'echo ok; exit 3' \
      </dev/null 2>"$work/err") || rc=$?
    if [ "$out" != ok ] || [ "$rc" != 3 ]; then
      echo "bench: docker-$rt check failed: sh -c 'echo ok; exit 3' gave '$out', exit $rc" >&2
      last_lines "$work/err" 5 | sed 's/^/    /' >&2
      continue
    fi
    if [ "$(time_runs "docker-$rt-warmup" 1 "${run[@]}")" = - ]; then continue; fi
    ms[docker,$rt]=$(time_runs "docker-$rt" "$n_docker" "${run[@]}")
  done
}
docker_section

echo "== start-up: /bin/true in a fresh container, to completion; median ms (cli: of $n_cli runs, docker: of $n_docker after 1 warm-up)"
printf '%-8s %9s %9s %9s %10s %11s\n' "" runc runsc moat moat/runc moat/runsc
for row in cli docker; do
  awk -v row="$row" -v c="${ms[$row,runc]}" -v s="${ms[$row,runsc]}" -v m="${ms[$row,moat]}" '
    function ratio(a, b) { return (a == "-" || b == "-" || b == 0) ? "-" : sprintf("%.2fx", a / b) }
    BEGIN { printf "%-8s %9s %9s %9s %10s %11s\n", row, c, s, m, ratio(m, c), ratio(m, s) }'
done
echo "load:$(uptime | sed 's/.*load average//')  ($(nproc) cpus)"
echo "bench: done in $((SECONDS - start)) s"
