"""The live view's monitor: heartbeats and device frames in, a screen and a summary out."""

from __future__ import annotations

import time

from rovbus.config import load_system
from rovbus.sim import demo_database
from rovbus.sim.view import Monitor, render, summarize
from rovbus.wire.canframe import CanFrame, batch_content
from rovbus.wire.codec import Codec
from tests.helpers.data import REPO


def test_monitor_decodes_device_frames_and_summarizes_heartbeats() -> None:
    system = load_system(REPO / "config" / "demo.toml")
    db = demo_database()
    monitor = Monitor(system, db)
    assert "propulsion/can/can0" in monitor.prefixes  # batched: the whole bus
    assert "navigation/can/can0/120" in monitor.prefixes
    nav, prop = Codec(username="navigation"), Codec(username="propulsion")
    depth = db.get_message_by_name("Depth").encode(
        {"Depth": 42.5, "Pressure": 530.0, "WaterTemp": 12.0}
    )
    monitor.observe(nav.message("can_frame", CanFrame("can0", 0x120, depth).to_content()))
    status = db.get_message_by_name("ThrusterStatus0")
    frames = [
        CanFrame(
            "can0",
            0x220 + i,
            status.encode(
                {"Rpm": 100 * i, "Current": 1.0, "Temperature": 20, "State": 1, "BusVoltage": 48}
            ),
        )
        for i in range(8)
    ]
    monitor.observe(prop.message("can_batch", batch_content("can0", frames)))
    for seq, rx in ((1, 10), (2, 30)):
        beat = {
            "seq": seq,
            "node": "navigation",
            "group": "vehicle",
            "session": "s1",
            "uptime": float(seq),
            "interval": 1.0,
            "state": "ok",
            "buses": {"can0": {"state": "ok", "rx": rx, "tx": 0, "errors": 0}},
        }
        monitor.observe(nav.message("heartbeat", beat))
    telemetry = monitor.telemetry()
    assert telemetry["depth"]["Depth"] == 42.5
    assert [t["Rpm"] for t in telemetry["thrusters"]] == [100 * i for i in range(8)]
    rows = monitor.table.rows(time.monotonic())
    screen = "\n".join(render(rows, telemetry, [], elapsed=3, title="demo"))
    assert "depth   42.50 m" in screen
    assert "20/s" in screen  # navigation: 20 frames in 1 s of uptime
    summary = summarize(system, rows, [], duration=3)
    assert not summary.ok  # propulsion and power were never heard
    assert "  node navigation: alive, up 2.0 s; can0 30 frames (ok)" in summary.lines
    assert "  node power: no heartbeat heard" in summary.lines
