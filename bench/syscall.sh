#!/usr/bin/env bash
# System call cost and syscall-heavy workloads, side by side in one
# invocation: native, runc, runsc (Debian's gVisor, its default ptrace platform),
# moat on ptrace and moat on systrap; ratios of moat-systrap to native and
# to runsc. Usage: bench/syscall.sh [path/to/moat]
#
# The micro rows are ns per call (bench/syscall.c: the median of 5 batches);
# the workload rows are the median wall time in ms of 5 runs. Everything
# runs on the host's own root, so every runner executes the same binaries.
# Run it on an otherwise idle host: the spinning hand-offs of systrap and
# every ratio suffer from a second load on a 2-core machine.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
moat=${1:-$here/../target/release/moat}
[ "$(id -u)" = 0 ] || { echo "bench: must run as root (runc)" >&2; exit 1; }
work=$(mktemp -d -p /var/tmp)  # not /tmp: each sandbox gets its own tmpfs there
bundle=$work/bundle
mkdir -p "$bundle/rootfs"
cleanup() {
  # Never remove anything while any part of the host's root is bound there.
  if mountpoint -q "$bundle/rootfs"; then
    umount -R "$bundle/rootfs"
  fi
  if mountpoint -q "$bundle/rootfs" || grep -q " $bundle/rootfs" /proc/self/mountinfo; then
    echo "bench: $bundle/rootfs is still mounted; leaving $work alone" >&2
    return
  fi
  rm -rf "$work"
}
trap cleanup EXIT
gcc -O2 -static -o "$work/sysb" "$here/syscall.c"
printf 'int main(void) { return 0; }\n' >"$work/small.c"

# runc on the host's root (a read-only recursive bind of /: runc cannot
# pivot out of / itself), with a tmpfs on /tmp; unmounted on exit.
have_runc=0
if command -v runc >/dev/null && mount --rbind / "$bundle/rootfs" && mount -o remount,bind,ro "$bundle/rootfs"; then
  (cd "$bundle" && runc spec)
  python3 - "$bundle/config.json" "$work" <<'PY'
import json, sys
p, work = sys.argv[1], sys.argv[2]
c = json.load(open(p))
c["root"] = {"path": "rootfs", "readonly": True}
c["process"]["terminal"] = False
c["process"]["cwd"] = "/"
c["process"]["env"] = ["PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LC_ALL=C"]
c["mounts"] = [m for m in c["mounts"] if not m["destination"].startswith("/sys")]
c["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]})
c["linux"].pop("namespaces", None)
c["linux"]["namespaces"] = [{"type": t} for t in ("pid", "ipc", "uts", "mount")]
json.dump(c, open(p, "w"))
PY
  runc --root "$work/runc" run --bundle "$bundle" bench-probe </dev/null >/dev/null 2>&1 && have_runc=1
fi
have_runsc=0
command -v runsc >/dev/null && runsc --network=none do /bin/true >/dev/null 2>&1 && have_runsc=1

# run RUNNER CMD...: CMD under one runner.
run() {
  local r=$1; shift
  case $r in
    native) "$@" ;;
    runc)
      python3 - "$bundle/config.json" "$@" <<'PY'
import json, sys
p = sys.argv[1]
c = json.load(open(p)); c["process"]["args"] = sys.argv[2:]; json.dump(c, open(p, "w"))
PY
      runc --root "$work/runc" run --bundle "$bundle" "b$RANDOM$RANDOM" </dev/null ;;
    runsc) runsc --network=none do "$@" ;;
    ptrace) "$moat" do --platform ptrace -- "$@" ;;
    systrap) "$moat" do --platform systrap -- "$@" ;;
  esac
}

runners=(native runc runsc ptrace systrap)
available() {
  case $1 in runc) [ $have_runc = 1 ] ;; runsc) [ $have_runsc = 1 ] ;; *) true ;; esac
}

# Median wall ms of 5 runs of a shell command line under a runner.
wall() {
  local r=$1 line=$2 t=()
  for _ in 1 2 3 4 5; do
    local t0 t1
    t0=$(date +%s%N)
    run "$r" /bin/sh -c "$line" >/dev/null 2>&1 || { echo fail; return; }
    t1=$(date +%s%N)
    t+=("$(( (t1 - t0) / 1000 ))")
  done
  printf '%s\n' "${t[@]}" | sort -n | awk '{a[NR]=$1} END {printf "%.1f", a[3]/1000}'
}

row() {
  local name=$1; shift
  local -A v=()
  for r in "${runners[@]}"; do
    if available "$r"; then v[$r]=$("$@" "$r"); else v[$r]=n/a; fi
  done
  printf '%-26s' "$name"
  for r in "${runners[@]}"; do printf ' %11s' "${v[$r]}"; done
  awk -v s="${v[systrap]}" -v n="${v[native]}" -v g="${v[runsc]}" 'BEGIN {
    if (n + 0 > 0 && s + 0 > 0) printf "  %7.2fx", s / n; else printf "  %8s", "n/a";
    if (g + 0 > 0 && s + 0 > 0) printf "  %7.2fx\n", s / g; else printf "  %8s\n", "n/a" }'
}

micro() { local mode=$1 n=$2 r=$3; run "$r" "$work/sysb" "$mode" "$n" 2>/dev/null | tail -1; }
workload() { wall "$2" "$1"; }

printf '%-26s' ""
for r in native runc runsc moat-ptrace moat-systrap; do printf ' %11s' "$r"; done
printf '  %8s  %8s\n' sys/nat sys/runsc
echo "-- ns per call"
row getppid micro getppid 20000
row clock_gettime micro clock_gettime 20000
row "read 1 byte /dev/zero" micro read 20000
row "open+close" micro openclose 5000
row "pipe ping-pong" micro pipe 2000
row "fork+exit+wait" micro fork 200
echo "-- ms per run (median of 5)"
row "python3 -c pass" workload "/usr/bin/python3 -c pass"
row "python3 imports" workload "/usr/bin/python3 -c 'import json,re,hashlib,sqlite3,asyncio'"
row "gcc -O2 small.c" workload "cd /tmp && gcc -O2 -o small $work/small.c"
row "sh loop of 300 true" workload "i=0; while [ \$i -lt 300 ]; do /bin/true; i=\$((i+1)); done"
row "git init + commit" workload "cd /tmp && rm -rf g && git init -q g && cd g && echo x >f && git add f && git -c user.name=b -c user.email=b@b commit -qm m"
row "50M | sha256sum" workload "head -c 50M /dev/zero | sha256sum"
