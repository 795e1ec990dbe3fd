#!/usr/bin/env bash
# tools/vcan-vm.sh COMMAND [ARG...]
#
# Runs COMMAND inside a User-Mode-Linux guest that has vcan0 and vcan1 up, for machines whose
# kernel has no CAN (CI containers, this build host). The guest's root file system is the
# host's / through hostfs, read-write, so the working tree, .venv and the host's tools are
# all there; the guest kernel (Debian's user-mode-linux, 6.1) brings can, can-raw and vcan.
#
#   tools/vcan-vm.sh true
#   tools/vcan-vm.sh .venv/bin/python -m pytest -m vcan tests/vcan -q
#
# COMMAND runs in the caller's working directory, without a terminal or standard input,
# with PATH, HOME, CI, LANG/LC_ALL, VIRTUAL_ENV and PYTHON* passed in (plus the variables
# named in VCAN_VM_ENV) and TMPDIR on a tmpfs of the guest. Its stdout and stderr are this
# script's. The guest has one CPU and fork+exec is slow there: call interpreters by their
# full path (.venv/bin/python), not through shims.
#
# Installs the Debian packages user-mode-linux and kmod when they are missing (apt-get,
# non-interactive; as root, or through `sudo -n`).
#
# Exit status:
#   N    COMMAND's own exit status (so 124/125 from COMMAND itself are ambiguous)
#   124  timeout: the guest was killed after VCAN_VM_TIMEOUT seconds
#   125  the guest could not run COMMAND: UML missing and not installable, the guest did not
#        boot, vcan could not be set up, or the guest died before writing COMMAND's status
# For 124 and 125 the last line on stderr says why (prefixed "vcan-vm: ").
#
# Environment:
#   VCAN_VM_TIMEOUT  seconds before the guest is killed (default 600)
#   VCAN_VM_MEM      guest memory (default 1G)
#   VCAN_VM_ENV      extra variable names to pass into the guest, space separated
#   VCAN_VM_KEEP=1   keep the state folder (init script, kernel log) for debugging
set -euo pipefail

prog=vcan-vm
timeout_s=${VCAN_VM_TIMEOUT:-600}
mem=${VCAN_VM_MEM:-1G}
modules_root=/usr/lib/uml/modules

say() { echo "$prog: $*" >&2; }
give_up() { # status reason...
    local status=$1
    shift
    say "$*"
    exit "$status"
}

if [ $# -eq 0 ]; then
    echo "usage: $0 COMMAND [ARG...]  (runs COMMAND in a UML guest with vcan0 and vcan1)" >&2
    exit 2
fi
case $timeout_s in '' | *[!0-9]*) give_up 2 "VCAN_VM_TIMEOUT must be whole seconds, got '$timeout_s'" ;; esac

# -- the host side: packages ---------------------------------------------------------------

missing_packages() {
    local pkgs=()
    command -v linux.uml >/dev/null || [ -x /usr/bin/linux.uml ] || pkgs+=(user-mode-linux)
    [ -x /usr/sbin/modprobe ] || [ -x /sbin/modprobe ] || pkgs+=(kmod)
    [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || [ -x /usr/bin/ip ] || pkgs+=(iproute2)
    echo "${pkgs[@]}"
}

install_packages() { # pkg...
    local sudo=() log
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null && sudo -n true 2>/dev/null ||
            give_up 125 "cannot install $* (not root, no passwordless sudo); install them: apt-get install $*"
        sudo=(sudo -n)
    fi
    command -v apt-get >/dev/null || give_up 125 "cannot install $* (no apt-get on this machine)"
    say "installing $* (apt-get)"
    log=$(mktemp "${TMPDIR:-/tmp}/vcan-vm-apt.XXXXXX")
    local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y -q
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
    if ! "${apt[@]}" install --no-install-recommends "$@" >"$log" 2>&1; then
        say "install failed; running apt-get update first"
        if ! { "${apt[@]}" update && "${apt[@]}" install --no-install-recommends "$@"; } >>"$log" 2>&1; then
            tail -n 5 "$log" | sed "s/^/$prog: | /" >&2
            rm -f "$log"
            give_up 125 "cannot install $* with apt-get"
        fi
    fi
    rm -f "$log"
}

read -r -a need <<<"$(missing_packages)"
if [ ${#need[@]} -gt 0 ]; then
    install_packages "${need[@]}"
fi
uml=$(command -v linux.uml || echo /usr/bin/linux.uml)
kernel_version=$("$uml" --version 2>/dev/null | tail -n 1) || true
[ -n "$kernel_version" ] || give_up 125 "$uml --version printed nothing; is user-mode-linux installed properly?"
[ -d "$modules_root/$kernel_version" ] || give_up 125 "no UML modules in $modules_root/$kernel_version"
modprobe=$(command -v modprobe || echo /usr/sbin/modprobe)
ip=$(command -v ip || echo /usr/sbin/ip)

# -- the state folder: init script, status, kernel log; the guest reaches it through hostfs --

state=$(mktemp -d "${TMPDIR:-/tmp}/vcan-vm.XXXXXX")
state=$(cd "$state" && pwd -P)
mkdir -p "$state/uml" "$state/guest"
uml_pid=
sleep_pid=
kill_guest() { # the UML kernel and its helper processes: one process group (setsid)
    [ -n "$uml_pid" ] || return 0
    kill -KILL -- "-$uml_pid" 2>/dev/null || kill -KILL "$uml_pid" 2>/dev/null || true
    wait "$uml_pid" 2>/dev/null || true
    local i
    for i in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 -- "-$uml_pid" 2>/dev/null || break
        sleep 0.2
    done
    uml_pid=
}
cleanup() {
    kill_guest
    [ -z "$sleep_pid" ] || kill "$sleep_pid" 2>/dev/null || true
    if [ "${VCAN_VM_KEEP:-0}" = 1 ]; then
        say "state kept in $state"
    else
        rm -rf "$state"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The guest's environment: what the caller's command needs, nothing of the host's session.
env_lines=()
for var in PATH HOME CI LANG LC_ALL VIRTUAL_ENV PYTHONPATH PYTHONHASHSEED \
    PYTHONDONTWRITEBYTECODE PYTHONWARNINGS PYTEST_ADDOPTS ${VCAN_VM_ENV:-}; do
    if [ -n "${!var+set}" ]; then
        env_lines+=("$(printf 'export %s=%q' "$var" "${!var}")")
    fi
done
guest_tmp=$state/guest/tmp

{
    cat <<EOF
#!/bin/bash
# PID 1 of the guest, written by tools/vcan-vm.sh. The status goes to $state/status.
state=$(printf %q "$state")
EOF
    cat <<'EOF'
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
setup_failed() {
    echo "$*" >"$state/reason"
    off
}
off() {
    sync
    echo o >/proc/sysrq-trigger # power off now: there is no init system to ask
    sleep 10
    exit 1 # PID 1 exiting panics the kernel, which also ends the guest
}
mount -t proc proc /proc || setup_failed "cannot mount /proc in the guest"
mount -t sysfs sysfs /sys || setup_failed "cannot mount /sys in the guest"
[ -c /dev/null ] || mount -t devtmpfs devtmpfs /dev || setup_failed "cannot mount /dev"
# tty1 and tty2 are the caller's stdout and stderr (the kernel's console is elsewhere);
# a UML console maps \n to \r\n unless told not to
stty -onlcr </dev/tty1 2>/dev/null || true
stty -onlcr </dev/tty2 2>/dev/null || true
exec </dev/null >/dev/tty1 2>/dev/tty2 || setup_failed "cannot open /dev/tty1 and /dev/tty2"
mount -t tmpfs -o mode=0755 tmpfs "$state/guest" || setup_failed "cannot mount a tmpfs"
mkdir -p "$state/guest/tmp" "$state/guest/mods/lib" /dev/shm
chmod 1777 "$state/guest/tmp"
mount -t tmpfs -o mode=1777 tmpfs /dev/shm 2>/dev/null || true
EOF
    cat <<EOF
modules_root=$(printf %q "$modules_root")
modprobe=$(printf %q "$modprobe")
ip=$(printf %q "$ip")
EOF
    cat <<'EOF'
# modprobe -d DIR reads DIR/lib/modules/$(uname -r): point that at the UML modules
ln -s "$modules_root" "$state/guest/mods/lib/modules"
printf '#!/bin/sh\nexec %q -d %q "$@"\n' "$modprobe" "$state/guest/mods" >"$state/guest/modprobe"
chmod 755 "$state/guest/modprobe"
echo "$state/guest/modprobe" >/proc/sys/kernel/modprobe # for autoloading (can-bcm, ...)
"$modprobe" -d "$state/guest/mods" -a can can-raw vcan ||
    setup_failed "modprobe of can, can-raw, vcan failed in the guest"
"$ip" link set lo up || setup_failed "cannot bring lo up in the guest"
for dev in vcan0 vcan1; do
    # MTU 72: CAN FD frames too (classic ones still pass)
    { "$ip" link add dev "$dev" type vcan && "$ip" link set "$dev" mtu 72 up; } ||
        setup_failed "cannot create $dev in the guest"
done
EOF
    echo '# the caller'"'"'s environment essentials, and nothing of the kernel'"'"'s (TERM, mem=, ...)'
    echo 'for var in $(compgen -e); do [ "$var" = PATH ] || unset "$var"; done'
    printf '%s\n' "${env_lines[@]}"
    printf 'export TMPDIR=%q\n' "$guest_tmp"
    printf 'cd %q || setup_failed "cannot cd to %q in the guest"\n' "$PWD" "$PWD"
    echo 'export PWD'
    printf 'command=('
    printf '%q ' "$@"
    printf ')\n'
    cat <<'EOF'
# No terminal: stdout and stderr reach the consoles through pipes (so isatty() is false).
{
    {
        "${command[@]}" </dev/null 2>&1 1>&5 5>&-
        echo $? >"$state/status.tmp"
    } | cat >&2
} 5>&1 | cat
mv "$state/status.tmp" "$state/status"
off
EOF
} >"$state/init"
chmod 755 "$state/init"

# -- boot ----------------------------------------------------------------------------------
# The guest's tty1 (the command's stdout) is our fd 3 and tty2 (its stderr) our fd 4. The
# kernel's console is a null serial line; UML's own chatter and the kernel log (UML's stderr
# console) go to uml.log, which is shown when the guest fails.
setsid "$uml" mem="$mem" uml_dir="$state/uml" umid="vcan-vm-$$" \
    root=/dev/root rootfstype=hostfs rootflags=/ rw init="$state/init" \
    con=null ssl=null con1=null,fd:3 con2=null,fd:4 console=ttyS0 \
    3>&1 4>&2 </dev/null >"$state/uml.log" 2>&1 &
uml_pid=$!
sleep "$timeout_s" &
sleep_pid=$!
finished=
wait -n -p finished "$uml_pid" "$sleep_pid" && uml_status=0 || uml_status=$?
if [ "$finished" != "$uml_pid" ]; then
    kill_guest
    give_up 124 "timeout: guest killed after ${timeout_s}s (VCAN_VM_TIMEOUT) running: $*"
fi
kill "$sleep_pid" 2>/dev/null || true
wait "$sleep_pid" 2>/dev/null || true
sleep_pid=
# UML's helper processes may linger a moment after the kernel; none outlives this script
kill_guest

if [ -f "$state/status" ]; then
    exit "$(cat "$state/status")"
fi
if [ -f "$state/reason" ]; then
    reason=$(cat "$state/reason")
else
    reason="the guest ended (linux.uml status $uml_status) without writing the command's status"
fi
if [ -s "$state/uml.log" ]; then
    tail -n 15 "$state/uml.log" | tr -d '\r' | sed "s/^/$prog: | /" >&2
fi
give_up 125 "$reason"
