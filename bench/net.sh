#!/usr/bin/env bash
# TCP inside the sandbox over loopback, and from the sandbox to a server on
# the host over a veth pair, side by side in one invocation: natively, under
# runc, under runsc (Debian's gVisor) and under moat; throughput, 1-byte
# request/response latency and connections per second, each the median of 3
# runs, with moat's ratio to runsc.
#
# Over the veth: native, runc and runsc run in a network namespace the
# script makes (a veth pair, 198.18.250.0/30, removed on exit; runc and
# runsc get it in their bundle's spec, as from an engine); moat makes its
# own with `moat do --network sandbox`. Each reaches `net serve` on the host
# end of its pair, so nothing is forwarded or translated. A contender that
# cannot run prints n/a, and why on stderr: Debian's runsc (0.0~20221219)
# refuses every network namespace on Linux 6.x ("cannot run with network
# enabled in root network namespace": its root-namespace test reads a sysctl
# that newer kernels have in every namespace), so its veth lines are n/a.
# Usage: bench/net.sh [path/to/moat]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
moat=${1:-$here/../target/release/moat}
work=$(mktemp -d -p /var/tmp)
ns=moat-bench-net-$$
port=$((20000 + $$ % 20000))
server=
cleanup() {
  runc delete --force moat-bench-net >/dev/null 2>&1 || true
  runc delete --force moat-bench-peer >/dev/null 2>&1 || true
  runsc delete --force moat-bench-peer >/dev/null 2>&1 || true
  [ -z "$server" ] || kill "$server" 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
command -v runsc >/dev/null || { echo "bench: runsc missing (apt-get install runsc)"; exit 1; }
command -v runc >/dev/null || { echo "bench: runc missing (apt-get install runc)"; exit 1; }
gcc -O2 -static -pthread -o "$work/net" "$here/net.c" 2>/dev/null

# Sets the args of the bundle's spec at $1 to /net and the rest.
set_args() {
  python3 -c 'import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["args"] = ["/net"] + sys.argv[2:]
json.dump(spec, open(path, "w"))' "$@"
}

# runc: a bundle whose root holds only the program; in the host's network
# namespace, since runc's own would have its loopback down.
mkdir -p "$work/bundle/rootfs"
cp "$work/net" "$work/bundle/rootfs/net"
(cd "$work/bundle" && runc spec)
python3 -c 'import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
json.dump(spec, open(path, "w"))' "$work/bundle/config.json"

under() {
  local how=$1; shift
  case $how in
    native) "$work/net" "$@" ;;
    runc)
      set_args "$work/bundle/config.json" "$@"
      runc run --bundle "$work/bundle" moat-bench-net ;;
    runsc) runsc --network=none do "$work/net" "$@" ;;
    moat) "$moat" do -- "$work/net" "$@" 2>/dev/null ;;
  esac
}

median() {
  local how=$1; shift
  for _ in 1 2 3; do under "$how" "$@"; done | sort -n | sed -n 2p
}

row() {
  local name=$1 unit=$2 better=$3; shift 3
  local n r g m
  n=$(median native "$@"); r=$(median runc "$@"); g=$(median runsc "$@"); m=$(median moat "$@")
  awk -v name="$name" -v unit="$unit" -v better="$better" -v n="$n" -v r="$r" -v g="$g" -v m="$m" 'BEGIN {
    ratio = (better == "higher") ? m / g : g / m
    printf "%-28s %10s %10s %10s %10s  %-6s moat vs runsc: %.2fx (>1: moat better)\n", name, n, r, g, m, unit, ratio
  }'
}

# The peer: a server on the host, reached over a veth pair.
ip netns add "$ns"
ip link add "mbn$$" type veth peer name eth0 netns "$ns"
ip addr add 198.18.250.1/30 dev "mbn$$"
ip link set "mbn$$" up
ip -n "$ns" addr add 198.18.250.2/30 dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set lo up
ip -n "$ns" route add default via 198.18.250.1
"$work/net" serve "$port" &
server=$!
mkdir -p "$work/peer/rootfs"
cp "$work/net" "$work/peer/rootfs/net"
python3 -c 'import json, sys
spec = json.load(open(sys.argv[1]))
spec["linux"]["namespaces"].append({"type": "network", "path": sys.argv[3]})
json.dump(spec, open(sys.argv[2], "w"))' "$work/bundle/config.json" "$work/peer/config.json" "/var/run/netns/$ns"

# One run over the veth.
peer() {
  local how=$1 mode=$2 n=$3 out
  case $how in
    native) out=$(nsenter --net="/var/run/netns/$ns" "$work/net" "$mode" "$n" 198.18.250.1 "$port" 2>&1 || true) ;;
    runc | runsc)
      set_args "$work/peer/config.json" "$mode" "$n" 198.18.250.1 "$port"
      out=$($how run --bundle "$work/peer" moat-bench-peer 2>&1 || true)
      $how delete --force moat-bench-peer >/dev/null 2>&1 || true ;;
    moat)
      # The sandbox's gateway is the host end of moat's own pair.
      local script="exec $work/net $mode $n \$(ip route | awk '/default/ {print \$3}') $port"
      out=$("$moat" do --network sandbox --egress-default allow -- /bin/sh -c "$script" 2>&1 || true) ;;
  esac
  if [[ $out =~ ^[0-9.]+$ ]]; then
    echo "$out"
  else
    echo "n/a"
    echo "bench: $how over the veth: ${out##*$'\n'}" >&2
  fi
}

peer_median() {
  local how=$1; shift
  for _ in 1 2 3; do peer "$how" "$@"; done | sort -n | sed -n 2p
}

peer_row() {
  local name=$1 unit=$2 better=$3; shift 3
  local n r g m
  n=$(peer_median native "$@"); r=$(peer_median runc "$@"); g=$(peer_median runsc "$@"); m=$(peer_median moat "$@")
  awk -v name="$name" -v unit="$unit" -v better="$better" -v n="$n" -v r="$r" -v g="$g" -v m="$m" 'BEGIN {
    if (g == "n/a" || m == "n/a") ratio = "n/a"
    else ratio = sprintf("%.2fx", (better == "higher") ? m / g : g / m)
    printf "%-28s %10s %10s %10s %10s  %-6s moat vs runsc: %s (>1: moat better)\n", name, n, r, g, m, unit, ratio
  }'
}

printf '%-28s %10s %10s %10s %10s\n' "" native runc runsc moat
row "TCP stream, loopback" "MB/s" higher stream 200
row "TCP 1-byte round trip" "us" lower rr 5000
row "TCP connect+close" "conn/s" higher crr 500
peer_row "TCP stream, to the host" "MB/s" higher stream 200
peer_row "TCP round trip, to host" "us" lower rr 2000
peer_row "TCP connect, to host" "conn/s" higher crr 300
