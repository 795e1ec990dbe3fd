"""The simulated devices on a python-can virtual bus: rates, plausible values, inputs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import can
import pytest

from rovbus.config import BusConfig
from rovbus.sim import DEMO_DBC, DeviceBus, demo_database, make_device, read_log
from tests.helpers.data import CAN_CAPTURES
from tests.sim.virtualtime import timeline


def _bus(devices: list[dict[str, object]]) -> BusConfig:
    return BusConfig.model_validate(
        {
            "name": "can0",
            "interface": "virtual",
            "channel": f"sim-{uuid.uuid4().hex[:8]}",
            "devices": devices,
        }
    )


async def _collect(
    listener: can.BusABC, done: Callable[[list[can.Message]], bool], timeout: float = 10.0
) -> list[can.Message]:
    """The frames on the bus until ``done(frames)`` holds (AssertionError after ``timeout``
    seconds). Each frame's ``timestamp`` is when it went on the virtual bus."""

    def read() -> list[can.Message]:
        got: list[can.Message] = []
        deadline = time.monotonic() + timeout
        while not done(got):
            left = deadline - time.monotonic()
            assert left > 0, f"{len(got)} frames in {timeout} s, not done"
            msg = listener.recv(left)
            if msg is not None:
                got.append(msg)
        return got

    return await asyncio.to_thread(read)


def _carried(frames: Iterable[can.Message]) -> list[tuple[int, bool, bytes]]:
    """What a frame carries: (ID, extended, data)."""
    return [(m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in frames]


#: (DBC message, signal) -> plausible range
PLAUSIBLE = {
    ("ImuAttitude", "Heading"): (0, 360),
    ("ImuAttitude", "Pitch"): (-10, 10),
    ("ImuAttitude", "Roll"): (-10, 10),
    ("Depth", "Depth"): (0, 150),
    ("Depth", "Pressure"): (101, 1700),
    ("Depth", "WaterTemp"): (5, 20),
    ("ThrusterStatus0", "Rpm"): (-20, 20),
    ("ThrusterStatus0", "Current"): (0, 2),
    ("ThrusterStatus0", "Temperature"): (10, 40),
    ("ThrusterStatus0", "BusVoltage"): (40, 60),
    ("BatteryStatus", "PackVoltage"): (40, 60),
    ("BatteryStatus", "PackCurrent"): (0, 30),
    ("BatteryStatus", "StateOfCharge"): (80, 100),
    ("LeakStatus", "LeakMain"): (0, 0),
    ("LeakStatus", "Humidity"): (20, 50),
    ("PduStatus", "Relays"): (3, 3),
    ("PduStatus", "BusVoltage"): (45, 50),
}


def test_every_device_at_its_rate_with_plausible_values() -> None:
    config = _bus(
        [
            {"kind": "thrusters", "count": 2},
            {"kind": "imu"},
            {"kind": "depth"},
            {"kind": "battery"},
            {"kind": "leak"},
            {"kind": "pdu"},
        ]
    )
    got = [
        frame
        for i, device in enumerate(config.devices)
        for _, frame in timeline(make_device(device, seed=i), 1.0)
    ]
    # the first second of each device's timeline: a step at 0, 1/rate, ...
    counts = Counter(msg.arbitration_id for msg in got)
    assert counts == {0x220: 20, 0x221: 20, 0x110: 50, 0x120: 10, 0x300: 2, 0x310: 1, 0x440: 2}
    db = demo_database()
    names = {0x220: "ThrusterStatus0", 0x221: "ThrusterStatus0"}
    for msg in got:
        name = names.get(msg.arbitration_id) or db.get_message_by_frame_id(msg.arbitration_id).name
        values = db.get_message_by_name(name).decode(msg.data)
        for (message, signal), (low, high) in PLAUSIBLE.items():
            if message == name:
                assert low <= values[signal] <= high, (name, signal, values[signal])
    assert DEMO_DBC.name == "demo.dbc"


async def test_the_devices_frames_reach_the_bus() -> None:
    config = _bus([{"kind": "imu"}, {"kind": "leak"}])
    devices = DeviceBus("alpha", config)
    with can.Bus(interface="virtual", channel=config.channel) as listener:
        await devices.start()
        try:
            got = await _collect(
                listener, lambda got: {0x110, 0x310} <= {m.arbitration_id for m in got}
            )
        finally:
            await devices.aclose()
    assert all(not m.is_extended_id for m in got)


def _last_status(
    ident: int, holds: Callable[[dict[str, Any]], bool]
) -> Callable[[list[can.Message]], bool]:
    """For ``_collect``: done once the last ThrusterStatus frame of ``ident`` ``holds``."""
    status = demo_database().get_message_by_name("ThrusterStatus0")

    def done(got: list[can.Message]) -> bool:
        if not got or got[-1].arbitration_id != ident:
            return False
        return holds(status.decode(got[-1].data))

    return done


async def test_thrusters_follow_a_setpoint_and_stop_all() -> None:
    config = _bus([{"kind": "thrusters", "count": 2, "rate_hz": 50}])
    devices = DeviceBus("alpha", config)
    status = demo_database().get_message_by_name("ThrusterStatus0")
    with can.Bus(interface="virtual", channel=config.channel) as operator:
        await devices.start()
        try:
            operator.send(
                can.Message(
                    arbitration_id=0x201,
                    data=(1500).to_bytes(2, "little", signed=True),
                    is_extended_id=False,
                )
            )
            # thruster 1 spins up to its setpoint (time constant 0.35 s)
            got = await _collect(operator, _last_status(0x221, lambda s: s["Rpm"] > 1470))
            last = {msg.arbitration_id: status.decode(msg.data) for msg in got}
            assert abs(last[0x221]["Rpm"] - 1500) < 30
            assert last[0x221]["State"] == "running"
            assert last[0x221]["Current"] > 1.0
            assert abs(last[0x220]["Rpm"]) < 5
            operator.send(can.Message(arbitration_id=0x210, data=b"\x01", is_extended_id=False))
            got = await _collect(operator, _last_status(0x221, lambda s: abs(s["Rpm"]) < 30))
            last = {msg.arbitration_id: status.decode(msg.data) for msg in got}
            assert last[0x221]["State"] == "stopped"
        finally:
            await devices.aclose()
    assert devices.devices[0].received == 2


async def test_replay_keeps_order_and_data() -> None:
    path = CAN_CAPTURES / "nmea2000-fast-packet.log"
    original = read_log(path)
    config = _bus([{"kind": "replay", "file": str(path), "speed": 2.0}])
    devices = DeviceBus("alpha", config)
    with can.Bus(interface="virtual", channel=config.channel) as listener:
        await devices.start()
        try:
            got = await _collect(listener, lambda got: len(got) == len(original))
        finally:
            await devices.aclose()
        while (more := listener.recv(0)) is not None:  # nothing more: it played once
            got.append(more)
    assert _carried(got) == _carried(original)


def test_replay_keeps_the_timing_at_its_speed() -> None:
    path = CAN_CAPTURES / "nmea2000-fast-packet.log"
    original = read_log(path)
    config = _bus([{"kind": "replay", "file": str(path), "speed": 2.0}])
    played = timeline(make_device(config.devices[0]), 60.0)
    first = original[0].timestamp
    assert _carried(f for _, f in played) == _carried(original)  # once, in order
    assert [t for t, _ in played] == pytest.approx([(m.timestamp - first) / 2 for m in original])


def test_replay_loops() -> None:
    path = CAN_CAPTURES / "nmea2000-fast-packet.log"
    original = read_log(path)
    config = _bus([{"kind": "replay", "file": str(path), "speed": 10.0, "loop": True}])
    played = timeline(make_device(config.devices[0]), 0.6)
    # a round is 0.12 s at speed 10, then one median gap: more than four rounds in 0.6 s
    assert len(played) > 4 * len(original)
    data = _carried(original)
    assert _carried(m for _, m in played) == [data[i % len(data)] for i in range(len(played))]
    span = (original[-1].timestamp - original[0].timestamp) / 10
    second_round = played[len(original)][0]
    assert span < second_round < span + 0.1  # after the last frame and one gap
