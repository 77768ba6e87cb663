#!/usr/bin/env bash
# File-operation costs: native, runsc (Debian's gVisor) and moat, in one invocation.
# Usage: bench/fileops.sh [path/to/moat]
#
# What it measures (bench/fileops.c, static, one workload per run, a warm-up of
# the same operation first, then N timed iterations):
#   open+close  open(O_RDONLY)+close of an existing 8 KiB file
#   stat        stat of that file
#   pread       pread of 4 KiB at offset 0 of that file, opened once
#   readdir     opendir/readdir all/closedir of a 10,000-entry directory (per listing)
#   read        open, read 100 MiB sequentially with a 1 MiB buffer, close (per pass)
# The data lives in a fresh directory under /var/tmp (not /tmp: each sandbox gets
# its own tmpfs there), so both sandboxes see it through their read-only host root.
#
# How to read it: the table is µs per operation (per listing / per pass for
# readdir / read); moat/native and moat/runsc are ratios of those (lower is better
# for moat, 1.00x = same cost). Sandboxes run fewer iterations than native, since
# each of their syscalls costs tens of µs. "-" means that runner failed or is
# missing; the reason is printed above the table.
# The last section runs stat and open+close under `moat do --stats` with N and
# 2N iterations (same warm-up) and prints (round_trips(2N) - round_trips(N)) / N:
# the Gofer round trips one operation costs once the file is cached; 0.000 means
# cached stat/open+close never leave the Sentry.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
moat=${1:-$here/../target/release/moat}
start=$SECONDS
work=$(mktemp -d -p /var/tmp fileops.XXXXXX)  # not /tmp: each sandbox gets its own tmpfs there
trap 'rm -rf "$work"' EXIT
bin=$work/fileops
gcc -O2 -static -o "$bin" "$here/fileops.c"

small=$work/small dir=$work/dir big=$work/big
head -c 8192 /dev/urandom >"$small"
mkdir "$dir"
(cd "$dir" && seq -f 'f%05g' 10000 | xargs touch)
head -c 100M /dev/zero >"$big"

ops=(open+close stat pread readdir read)
declare -A path=([open+close]=$small [stat]=$small [pread]=$small [readdir]=$dir [read]=$big)
declare -A warm=([open+close]=10 [stat]=10 [pread]=10 [readdir]=1 [read]=1)
# Iterations: native, and each sandbox (kept small: a few seconds per moat run).
declare -A n_native=([open+close]=200000 [stat]=500000 [pread]=500000 [readdir]=200 [read]=20)
declare -A n_sandbox=([open+close]=20000 [stat]=50000 [pread]=50000 [readdir]=100 [read]=5)

run_native() { "$bin" "$@"; }
run_runsc() { timeout 120 runsc --network=none "do" "$bin" "$@"; }
run_moat() { timeout 120 "$moat" "do" -- "$bin" "$@"; }

# Prints the last non-empty line of a file (the error, usually), or "(no output)".
last_line() { grep -v '^[[:space:]]*$' "$1" | tail -1 || echo "(no output)"; }

# Whether a runner can start a sandbox at all; says why not.
usable() {
  local who=$1 rc=0; shift
  "$@" >"$work/probe.out" 2>"$work/probe.err" || rc=$?
  [ "$rc" -eq 0 ] && return 0
  echo "bench: $who skipped: '$*' failed (exit $rc): $(last_line "$work/probe.err")" >&2
  return 1
}
have_runsc=0 have_moat=0
if ! command -v runsc >/dev/null; then
  echo "bench: runsc skipped: not installed (apt-get install runsc)" >&2
elif usable runsc runsc --network=none "do" /bin/true; then have_runsc=1; fi
if [ ! -x "$moat" ]; then
  echo "bench: moat skipped: $moat is not an executable (cargo build --release)" >&2
elif usable moat "$moat" "do" -- /bin/true; then have_moat=1; fi

# measure RUNNER OP N: prints "ns [MiB/s]", or "-" after saying why on stderr.
measure() {
  local who=$1 op=$2 n=$3 out rc=0
  out=$("run_$who" "$op" "${path[$op]}" "$n" "${warm[$op]}" 2>"$work/err") || rc=$?
  if [ "$rc" -ne 0 ] || ! [[ $out =~ ^[0-9]+( [0-9.]+)?$ ]]; then
    echo "bench: $who $op failed (exit $rc): $(last_line "$work/err")" >&2
    echo "-"
  else
    echo "$out"
  fi
}

declare -A ns mibs
for op in "${ops[@]}"; do
  for who in native runsc moat; do
    n=${n_sandbox[$op]}
    case $who in
      native) n=${n_native[$op]} ;;
      runsc) [ "$have_runsc" = 1 ] || { ns[$who,$op]=-; mibs[$who,$op]=-; continue; } ;;
      moat) [ "$have_moat" = 1 ] || { ns[$who,$op]=-; mibs[$who,$op]=-; continue; } ;;
    esac
    read -r t m < <(measure "$who" "$op" "$n")
    ns[$who,$op]=$t
    mibs[$who,$op]=${m:--}
  done
done

echo "== file operations: µs per op (readdir: per 10,000-entry listing; read: per 100 MiB pass)"
echo "   iterations native/sandbox: $(for op in "${ops[@]}"; do printf '%s %s/%s  ' "$op" "${n_native[$op]}" "${n_sandbox[$op]}"; done)"
printf '%-11s %12s %12s %12s %12s %11s\n' op native runsc moat moat/native moat/runsc
for op in "${ops[@]}"; do
  awk -v op="$op" -v n="${ns[native,$op]}" -v r="${ns[runsc,$op]}" -v m="${ns[moat,$op]}" '
    function us(x) { return x == "-" ? "-" : sprintf("%.2f", x / 1000) }
    function ratio(a, b) { return (a == "-" || b == "-" || b == 0) ? "-" : sprintf("%.2fx", a / b) }
    BEGIN { printf "%-11s %12s %12s %12s %12s %11s\n", op, us(n), us(r), us(m), ratio(m, n), ratio(m, r) }'
done
printf '%-11s %12s %12s %12s   (MiB/s, 100 MiB sequential read)\n' "read MiB/s" \
  "${mibs[native,read]}" "${mibs[runsc,read]}" "${mibs[moat,read]}"

echo "== gofer round trips per op after warm-up (moat do --stats, N vs 2N iterations)"
# round_trips OP N: gofer_round_trips reported by `moat do --stats` for that run.
round_trips() {
  timeout 120 "$moat" "do" --stats -- "$bin" "$1" "${path[$1]}" "$2" "${warm[$1]}" >/dev/null 2>"$work/stats.err" || return 1
  grep -o 'moat: stats:.*' "$work/stats.err" | grep -o 'gofer_round_trips=[0-9]*' | tail -1 | cut -d= -f2
}
if [ "$have_moat" != 1 ]; then
  echo "moat --stats not measured: moat is not usable (see above)"
elif ! "$moat" "do" --stats -- /bin/true >/dev/null 2>"$work/stats.err" \
  || ! grep -q 'moat: stats:.*gofer_round_trips=[0-9]' "$work/stats.err"; then
  echo "moat --stats not available: $(grep -m1 -i error "$work/stats.err" || last_line "$work/stats.err")"
else
  rt_n=2000
  for op in stat open+close; do
    if a=$(round_trips "$op" "$rt_n") && b=$(round_trips "$op" $((2 * rt_n))) && [ -n "$a" ] && [ -n "$b" ]; then
      awk -v op="$op" -v a="$a" -v b="$b" -v n="$rt_n" \
        'BEGIN {printf "%-11s %.3f gofer round trips per op after warm-up (N=%d: %d, 2N=%d: %d)\n", op, (b - a) / n, n, a, 2 * n, b}'
    else
      echo "$op: moat do --stats run failed: $(last_line "$work/stats.err")"
    fi
  done
fi
echo "bench: done in $((SECONDS - start)) s"
