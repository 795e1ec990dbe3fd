"""The helm with real daemons: a node subprocess on a udp_multicast bus the test hears,
and ``rovbus helm`` as the holder, killed or frozen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import can
import pytest

from tests.helm.rig import MULTICAST_GROUP, Wire, helm_frame, helm_node_toml, unique_port
from tests.helpers.daemons import running
from tests.helpers.systemfile import system_toml


@pytest.fixture
def vehicle_with(tmp_path: Path) -> Iterator[Callable[[int], tuple[Path, Wire]]]:
    """``vehicle_with(lease_ms)``: a system file whose node ``prop`` has a helm on a
    multicast bus, and the wire of that bus; the node is started by each test."""
    wires: list[Wire] = []

    def make(lease_ms: int) -> tuple[Path, Wire]:
        port = unique_port()
        path = tmp_path / "system.toml"
        path.write_text(system_toml(helm_node_toml("prop", lease_ms=lease_ms, multicast_port=port)))
        wires.append(Wire(can.Bus(interface="udp_multicast", channel=MULTICAST_GROUP, port=port)))
        return path, wires[-1]

    yield make
    for wire in wires:
        wire.close()


@pytest.fixture
def vehicle(vehicle_with: Callable[[int], tuple[Path, Wire]]) -> tuple[Path, Wire]:
    """``vehicle_with`` a lease of 300 ms."""
    return vehicle_with(300)


def rovbus(config: Path, *args: str, stdin: int | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "rovbus", *args, "--config", str(config), "--group", "vehicle"],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = rovbus(config, *args)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def holding(config: Path, wire: Wire) -> tuple[subprocess.Popen[str], int]:
    """``rovbus helm prop can0`` holding the helm, its first setpoint on the bus (index)."""
    holder = rovbus(config, "helm", "prop", "can0", stdin=subprocess.PIPE)
    assert holder.stdin is not None
    holder.stdin.write("201#E803\n")
    holder.stdin.flush()
    return holder, wire.wait(lambda s: s.id == 0x201 and s.data == b"\xe8\x03", timeout=30)


@pytest.mark.parametrize("fault", [signal.SIGKILL, signal.SIGSTOP], ids=["killed", "hung"])
def test_the_holder_killed_or_hung_brings_the_failsafe_onto_the_bus(
    vehicle: tuple[Path, Wire], tmp_path: Path, fault: signal.Signals
) -> None:
    config, wire = vehicle
    with running(config, tmp_path, nodes=["prop"]):
        holder, command = holding(config, wire)
        try:
            os.kill(holder.pid, fault)
            first = wire.wait_failsafe(command)
            wire.all_failsafe_seen(first)
            assert not [s for s in wire.frames()[first:] if helm_frame(s)]
            status = run(config, "helm", "prop", "--status")
            assert "prop/can0: no holder, failsafe active (lease of" in status.stdout, status
        finally:
            holder.kill()
            holder.communicate(timeout=30)


@pytest.mark.parametrize("how", ["eof", "ctrl-c"])
def test_eof_or_ctrl_c_releases_and_the_failsafe_follows(
    vehicle_with: Callable[[int], tuple[Path, Wire]], tmp_path: Path, how: str
) -> None:
    config, wire = vehicle_with(60_000)  # the release, never the lease
    with running(config, tmp_path, nodes=["prop"]):
        holder, command = holding(config, wire)
        assert holder.stdin is not None
        if how == "eof":
            holder.stdin.close()
        else:
            holder.send_signal(signal.SIGINT)
        assert holder.wait(timeout=30) == (0 if how == "eof" else 130), holder.communicate()
        wire.all_failsafe_seen(command)
        assert "released by" in run(config, "helm", "prop", "--status").stdout


class Joystick:
    """Feeds the holder a setpoint every 50 ms, as a joystick program would."""

    def __init__(self, holder: subprocess.Popen[str]) -> None:
        self.holder = holder
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._feed, daemon=True)
        self.thread.start()

    def _feed(self) -> None:
        assert self.holder.stdin is not None
        while not self.stopped.wait(0.05):
            try:
                self.holder.stdin.write("201#E803\n")
                self.holder.stdin.flush()
            except (BrokenPipeError, ValueError):
                return

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


def test_stop_and_stop_frames_work_without_the_helm_and_send_says_how_to_take_it(
    vehicle_with: Callable[[int], tuple[Path, Wire]], tmp_path: Path
) -> None:
    config, wire = vehicle_with(3000)  # fed every 50 ms: it holds unless stopped
    with running(config, tmp_path, nodes=["prop"]):
        holder, command = holding(config, wire)
        joystick = Joystick(holder)
        try:
            refused = run(config, "send", "prop", "can0", "202#E803")
            assert refused.returncode == 1
            assert "HelmRefused" in refused.stderr
            assert "held by" in refused.stderr
            assert "rovbus helm prop can0 --force" in refused.stderr
            assert run(config, "send", "prop", "can0", "210#01").returncode == 0
            wire.wait(lambda s: s.id == 0x210, command)
            after = len(wire.frames())
            stopped = run(config, "stop", "--reason", "diver in the water")
            assert stopped.returncode == 0, stopped.stderr
            assert "prop/can0: no holder, failsafe active (stop by" in stopped.stdout
            wire.all_failsafe_seen(after)
            assert holder.wait(timeout=30) == 1  # its next setpoint: HelmLost
            assert "HelmLost" in holder.communicate()[1]
        finally:
            joystick.stop()
            holder.kill()
            holder.communicate(timeout=30)


def test_a_node_restarted_writes_the_failsafe_at_start_and_no_one_holds_the_helm(
    vehicle: tuple[Path, Wire], tmp_path: Path
) -> None:
    config, wire = vehicle
    with running(config, tmp_path, nodes=["prop"]):
        holder, _command = holding(config, wire)
    holder.kill()
    holder.communicate(timeout=30)
    restart = len(wire.frames())
    with running(config, tmp_path, nodes=["prop"]):
        wire.all_failsafe_seen(restart)
        status = run(config, "helm", "prop", "--status")
        assert "prop/can0: no holder, failsafe active (node started)" in status.stdout
        assert "can0[helm failsafe]" in run(config, "nodes").stdout
        refused = run(config, "send", "prop", "can0", "201#E803")
        assert "no one holds it" in refused.stderr


def test_a_late_joiner_behind_the_forwarder_sees_the_helm_state_at_once(
    tmp_path: Path,
) -> None:
    from rovbus.client import BlockingClient
    from tests.helpers.systemfile import forwarder_toml

    port = unique_port()
    path = tmp_path / "system.toml"
    path.write_text(
        system_toml(helm_node_toml("prop", lease_ms=300, multicast_port=port))
        + forwarder_toml("tether", "vehicle", "topside")
    )
    with running(path, tmp_path, nodes=["prop"], forwarders=["tether"]):
        client = BlockingClient.from_system(path, "topside")
        try:
            with client.subscribe(["prop/helm"]) as sub:
                message = sub.recv(timeout=15)  # the cache's, not a change: none happens
            assert message.msg_type == "helm_status"
            assert message.content["buses"]["can0"]["reason"] == "node started"
        finally:
            client.close()
