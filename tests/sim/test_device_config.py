"""The ``devices`` of a bus in the system file: defaults, and errors in file terms."""

from __future__ import annotations

from pathlib import Path

import pytest

from rovbus.config import load_system
from rovbus.config.models import ReplayDevice, ThrustersDevice
from rovbus.errors import ConfigError
from tests.helpers.data import REPO
from tests.helpers.systemfile import node_toml
from tests.sim.devicefiles import with_devices


def _problems(write_system, devices: str) -> list[str]:  # type: ignore[no-untyped-def]
    path = write_system(with_devices(node_toml("alpha"), "can0", devices))
    with pytest.raises(ConfigError) as caught:
        load_system(path)
    return caught.value.problems


def test_defaults_and_kinds(write_system) -> None:
    path = write_system(
        with_devices(
            node_toml("alpha"),
            "can0",
            '[{ kind = "thrusters", count = 4 }, { kind = "depth" }, { kind = "imu" }, '
            '{ kind = "battery" }, { kind = "leak" }, { kind = "pdu" }]',
        )
    )
    bus = load_system(path).node("alpha").bus("can0")
    assert [d.kind for d in bus.devices] == ["thrusters", "depth", "imu", "battery", "leak", "pdu"]
    thrusters = bus.devices[0]
    assert isinstance(thrusters, ThrustersDevice)
    assert (thrusters.setpoint_id, thrusters.base_id, thrusters.rate_hz) == (0x200, 0x220, 20.0)
    assert thrusters.ids() == [0x220, 0x221, 0x222, 0x223]
    assert "can_filters" not in bus.device_kwargs()


def test_bad_devices_name_their_key(write_system) -> None:
    problems = _problems(
        write_system,
        '[{ kind = "thrusters", count = 40, speed = 2 }, { kind = "sonar" }, { rate_hz = 2 }, '
        '{ kind = "depth", base_id = 0x900 }, { kind = "replay" }, '
        '{ kind = "imu", rate_hz = "x" }]',
    )
    at = "nodes.alpha.buses[0].devices"
    assert problems == [
        f"{at}[0].count: expected a number at most 16, got 40",
        f"{at}[0].speed: unknown key; expected one of: rate_hz, kind, count, setpoint_id, "
        "stop_id, base_id",
        f'{at}[1]: unknown kind "sonar"; expected one of: thrusters, depth, imu, battery, '
        "leak, pdu, replay",
        f'{at}[2]: required key "kind" is missing',
        f"{at}[3].base_id: 0x900 is out of the 11-bit range 0x0-0x7FF",
        f"{at}[4].file: required key is missing",
        f'{at}[5].rate_hz: expected a number, got "x"',
    ]


def test_replay_file_resolves_from_the_system_file_and_must_exist(
    write_system, tmp_path: Path
) -> None:
    (tmp_path / "capture.log").write_text("(1.0) can0 123#00\n")
    path = write_system(
        with_devices(node_toml("alpha"), "can0", '[{ kind = "replay", file = "capture.log" }]')
    )
    device = load_system(path).node("alpha").bus("can0").devices[0]
    assert isinstance(device, ReplayDevice)
    assert device.file == tmp_path / "capture.log"
    assert not device.loop
    problems = _problems(write_system, '[{ kind = "replay", file = "missing.log" }]')
    assert problems == [
        f"nodes.alpha.buses[0].devices[0].file: replay file {tmp_path / 'missing.log'} "
        "does not exist"
    ]


def test_shipped_demo_files_have_devices() -> None:
    demo = load_system(REPO / "config" / "demo.toml")
    kinds = {
        (node.name, bus.name): [d.kind for d in bus.devices]
        for node in demo.nodes.values()
        for bus in node.buses
    }
    assert kinds == {
        ("propulsion", "can0"): ["thrusters"],
        ("navigation", "can0"): ["imu", "depth"],
        ("power", "bms"): ["battery", "leak"],
        ("power", "pdu"): ["pdu"],
    }
    replay = REPO / "config" / "replay-demo.toml"
    assert load_system(replay).node("autopilot").bus("n2k").devices[0].kind == "replay"
