#!/bin/sh
# A CNI plugin for the CRI test (crates/moat/tests/cri.rs), installed as both
# `loopback` (which containerd always asks for) and `moat-test-net` (the
# pod network of the test's CNI config). It gives the pod's network
# namespace its loopback and an `eth0` whose veth peer stays inside that
# same namespace, so that containerd has an address to report and no packet
# can leave it. Everything it makes vanishes with the namespace, so DEL has
# nothing to undo.
set -e
config=$(cat)
version=$(printf '%s' "$config" | sed -n 's/.*"cniVersion" *: *"\([^"]*\)".*/\1/p')
in_pod() { nsenter --net="$CNI_NETNS" "$@" >&2; }
case "$CNI_COMMAND" in
ADD)
    if [ "$CNI_IFNAME" = lo ]; then
        in_pod ip link set lo up
        printf '{"cniVersion":"%s","interfaces":[{"name":"lo","sandbox":"%s"}],"ips":[]}' "$version" "$CNI_NETNS"
    else
        in_pod ip link add "$CNI_IFNAME" type veth peer name moat-peer
        in_pod ip addr add 192.0.2.2/24 dev "$CNI_IFNAME"
        in_pod ip link set moat-peer up
        in_pod ip link set "$CNI_IFNAME" up
        printf '{"cniVersion":"%s","interfaces":[{"name":"%s","sandbox":"%s"}],"ips":[{"version":"4","address":"192.0.2.2/24","interface":0}]}' \
            "$version" "$CNI_IFNAME" "$CNI_NETNS"
    fi
    ;;
VERSION)
    printf '{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}'
    ;;
DEL | CHECK) ;;
*)
    printf '{"cniVersion":"0.4.0","code":4,"msg":"unknown CNI_COMMAND %s"}' "$CNI_COMMAND"
    exit 1
    ;;
esac
