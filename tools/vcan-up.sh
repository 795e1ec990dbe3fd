#!/usr/bin/env bash
# tools/vcan-up.sh [NAME...]: create virtual CAN interfaces (default vcan0 and vcan1) on a
# Linux machine and bring them up, CAN FD capable (MTU 72). Idempotent: an interface that
# exists is only brought up. Uses sudo when not root. Then:
#
#   .venv/bin/pytest -m vcan tests/vcan         # the socketcan tests
#   rovbus demo --vcan                          # the demo on socketcan
#
# Remove them with: sudo ip link del vcan0 (and vcan1).
# No CAN in this kernel (containers, CI)? tools/vcan-vm.sh runs commands in a UML guest instead.
set -euo pipefail

names=("$@")
[ ${#names[@]} -gt 0 ] || names=(vcan0 vcan1)

sudo=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "vcan-up: not root and no sudo" >&2; exit 1; }
    sudo=(sudo)
fi
command -v ip >/dev/null || { echo "vcan-up: needs ip (iproute2)" >&2; exit 1; }

if [ ! -d /sys/module/vcan ]; then
    if "${sudo[@]}" modprobe vcan; then
        echo "loaded kernel module vcan"
    else
        echo "vcan-up: modprobe vcan failed: this kernel has no vcan" \
            "(try tools/vcan-vm.sh COMMAND, which runs COMMAND in a UML guest with vcan)" >&2
        exit 1
    fi
fi
# can-raw is what socketcan sockets need; usually autoloaded, but say so when it is missing
if [ ! -d /sys/module/can_raw ] && "${sudo[@]}" modprobe can-raw 2>/dev/null; then
    echo "loaded kernel module can-raw"
fi

for name in "${names[@]}"; do
    if [ -e "/sys/class/net/$name" ]; then
        if ! ip -details link show "$name" | grep -qw vcan; then
            echo "vcan-up: $name exists and is not a vcan; left alone" >&2
            continue
        fi
        what="exists"
    else
        "${sudo[@]}" ip link add dev "$name" type vcan
        what="created"
    fi
    if [ "$(cat "/sys/class/net/$name/mtu")" != 72 ]; then
        # the MTU can only change while the interface is down
        "${sudo[@]}" ip link set "$name" down
        "${sudo[@]}" ip link set "$name" mtu 72
    fi
    "${sudo[@]}" ip link set "$name" up
    echo "$name: $what, up, mtu $(cat "/sys/class/net/$name/mtu") (CAN FD capable)"
done
