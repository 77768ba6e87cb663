#!/usr/bin/env bash
# TCP over loopback inside the sandbox, side by side in one invocation:
# natively, under runc, under runsc (Debian's gVisor) and under moat;
# throughput, 1-byte request/response latency and connections per second,
# each the median of 3 runs, with moat's ratio to runsc.
# Usage: bench/net.sh [path/to/moat]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
moat=${1:-$here/../target/release/moat}
work=$(mktemp -d -p /var/tmp)
trap 'runc delete --force moat-bench-net >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
command -v runsc >/dev/null || { echo "bench: runsc missing (apt-get install runsc)"; exit 1; }
command -v runc >/dev/null || { echo "bench: runc missing (apt-get install runc)"; exit 1; }
gcc -O2 -static -pthread -o "$work/net" "$here/net.c" 2>/dev/null

# runc: a bundle whose root holds only the program; in the host's network
# namespace, since runc's own would have its loopback down.
mkdir -p "$work/bundle/rootfs"
cp "$work/net" "$work/bundle/rootfs/net"
(cd "$work/bundle" && runc spec)
python3 - "$work/bundle/config.json" <<'EOF'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
json.dump(spec, open(path, "w"))
EOF

under() {
  local how=$1; shift
  case $how in
    native) "$work/net" "$@" ;;
    runc)
      python3 - "$work/bundle/config.json" "$@" <<'EOF'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
spec = json.load(open(path))
spec["process"]["args"] = ["/net"] + args
json.dump(spec, open(path, "w"))
EOF
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

printf '%-28s %10s %10s %10s %10s\n' "" native runc runsc moat
row "TCP stream, loopback" "MB/s" higher stream 200
row "TCP 1-byte round trip" "us" lower rr 5000
row "TCP connect+close" "conn/s" higher crr 500
