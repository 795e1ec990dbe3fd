"""The simulated devices on a python-can virtual bus: rates, plausible values, inputs."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import can
import pytest

from rovbus.config import BusConfig
from rovbus.sim import DEMO_DBC, DeviceBus, demo_database, read_log
from tests.conftest import SHARED_CAN


def _bus(devices: list[dict[str, object]]) -> BusConfig:
    return BusConfig.model_validate(
        {
            "name": "can0",
            "interface": "virtual",
            "channel": f"sim-{uuid.uuid4().hex[:8]}",
            "devices": devices,
        }
    )


async def _collect(listener: can.BusABC, seconds: float) -> list[tuple[float, can.Message]]:
    def read() -> list[tuple[float, can.Message]]:
        got = []
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            msg = listener.recv(left)
            if msg is not None:
                got.append((time.monotonic(), msg))
        return got

    return await asyncio.to_thread(read)


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


async def test_every_device_at_its_rate_with_plausible_values() -> None:
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
    devices = DeviceBus("alpha", config)
    with can.Bus(interface="virtual", channel=config.channel) as listener:
        await devices.start()
        try:
            got = await _collect(listener, 1.0)
        finally:
            await devices.aclose()
    counts = Counter(msg.arbitration_id for _, msg in got)
    # 1 s of a fixed timeline: rate frames (+1 for the step at t=0), some slack for load
    expected = {0x220: 20, 0x221: 20, 0x110: 50, 0x120: 10, 0x300: 2, 0x310: 1, 0x440: 2}
    for ident, rate in expected.items():
        assert rate * 0.7 <= counts[ident] <= rate + 2, (hex(ident), counts[ident])
    db = demo_database()
    names = {0x220: "ThrusterStatus0", 0x221: "ThrusterStatus0"}
    for _, msg in got:
        name = names.get(msg.arbitration_id) or db.get_message_by_frame_id(msg.arbitration_id).name
        values = db.get_message_by_name(name).decode(msg.data)
        for (message, signal), (low, high) in PLAUSIBLE.items():
            if message == name:
                assert low <= values[signal] <= high, (name, signal, values[signal])
    assert DEMO_DBC.name == "demo.dbc"


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
            got = await _collect(operator, 1.5)
            last = {msg.arbitration_id: status.decode(msg.data) for _, msg in got}
            assert abs(last[0x221]["Rpm"] - 1500) < 30
            assert last[0x221]["State"] == "running"
            assert last[0x221]["Current"] > 1.0
            assert abs(last[0x220]["Rpm"]) < 5
            operator.send(can.Message(arbitration_id=0x210, data=b"\x01", is_extended_id=False))
            got = await _collect(operator, 1.5)
            last = {msg.arbitration_id: status.decode(msg.data) for _, msg in got}
            assert abs(last[0x221]["Rpm"]) < 30
            assert last[0x221]["State"] == "stopped"
        finally:
            await devices.aclose()
    assert devices.devices[0].received == 2


needs_shared = pytest.mark.skipif(
    not (SHARED_CAN / "nmea2000-fast-packet.log").exists(), reason="no ../shared/data/can"
)


@needs_shared
async def test_replay_keeps_order_data_and_timing() -> None:
    path = SHARED_CAN / "nmea2000-fast-packet.log"
    original = read_log(path)
    span = original[-1].timestamp - original[0].timestamp
    config = _bus([{"kind": "replay", "file": str(path), "speed": 2.0}])
    devices = DeviceBus("alpha", config)
    with can.Bus(interface="virtual", channel=config.channel) as listener:
        await devices.start()
        try:
            got = await _collect(listener, span / 2 + 0.5)
        finally:
            await devices.aclose()
    assert [(m.arbitration_id, m.is_extended_id, bytes(m.data)) for _, m in got] == [
        (m.arbitration_id, m.is_extended_id, bytes(m.data)) for m in original
    ]
    played = got[-1][0] - got[0][0]
    assert 0.8 <= played / (span / 2) <= 1.25, (played, span)


@needs_shared
async def test_replay_loops() -> None:
    path = SHARED_CAN / "nmea2000-fast-packet.log"
    config = _bus([{"kind": "replay", "file": str(path), "speed": 10.0, "loop": True}])
    devices = DeviceBus("alpha", config)
    with can.Bus(interface="virtual", channel=config.channel) as listener:
        await devices.start()
        try:
            got = await _collect(listener, 0.6)
        finally:
            await devices.aclose()
    assert len(got) > 2 * len(read_log(path))
