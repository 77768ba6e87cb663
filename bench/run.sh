#!/usr/bin/env bash
# Side-by-side startup and syscall cost: native, runsc (Debian's gVisor) and moat,
# in one invocation, printed as ratios. Usage: bench/run.sh [path/to/moat]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
moat=${1:-$here/../target/release/moat}
work=$(mktemp -d -p /var/tmp)  # not /tmp: each sandbox gets its own tmpfs there
trap 'rm -rf "$work"' EXIT
gcc -O2 -static -o "$work/getppid" "$here/getppid.c"
command -v runsc >/dev/null || { echo "bench: runsc missing (apt-get install runsc)"; exit 1; }
[ -x /usr/bin/time ] || { echo "bench: GNU time missing (apt-get install time)"; exit 1; }

# Median wall time (ms) and max RSS (KiB) of a command over N runs.
measure() {
  local n=$1; shift
  local times=() rss=0
  for _ in $(seq "$n"); do
    local out t0 t1
    t0=$(date +%s%N)
    /usr/bin/time -o "$work/time" -f '%M' "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    out="$(( (t1 - t0) / 1000 )) $(tail -1 "$work/time")"
    times+=("$(echo "$out" | awk '{print $1/1000}')")
    local r; r=$(echo "$out" | awk '{print $2}')
    [ "$r" -gt "$rss" ] && rss=$r
  done
  printf '%s\n' "${times[@]}" | sort -n | awk -v rss="$rss" '{a[NR]=$1} END {printf "%.1f %d\n", a[int((NR+1)/2)], rss}'
}

echo "== start-up: 'true' to completion (median of 10; max RSS of the launcher and its waited children)"
read -r n_ms n_rss < <(measure 10 /bin/true)
read -r r_ms r_rss < <(measure 10 runsc --network=none do /bin/true)
read -r m_ms m_rss < <(measure 10 "$moat" do -- /bin/true)
printf '%-8s %8s ms %8s KiB\n' native "$n_ms" "$n_rss" runsc "$r_ms" "$r_rss" moat "$m_ms" "$m_rss"
awk -v m="$m_ms" -v r="$r_ms" 'BEGIN {printf "moat/runsc start-up: %.2fx\n", m/r}'

echo "== getppid: ns per call"
n=$("$work/getppid" 2000000)
g="$work/getppid"
r=$(runsc --network=none do "$g" 20000)
m=$("$moat" do -- "$g" 20000 2>/dev/null)

printf '%-8s %8s ns\n' native "$n" runsc "$r" moat "$m"
awk -v m="$m" -v r="$r" -v n="$n" 'BEGIN {printf "moat/runsc: %.2fx  moat/native: %.0fx\n", m/r, m/n}'
