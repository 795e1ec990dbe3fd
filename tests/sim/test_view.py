"""The live view's monitor: heartbeats and device frames in, a screen and a summary out."""

from __future__ import annotations

import time

from rovbus.config import load_system
from rovbus.sim import demo_database
from rovbus.sim.view import Monitor, render, summarize
from rovbus.wire.canframe import CanFrame, batch_content
from rovbus.wire.codec import Codec
from rovbus.wire.serializers import Serializer
from tests.helpers.data import REPO
from tests.helpers.systemfile import node_toml


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


def test_the_monitor_verifies_with_the_system_s_checks(write_system, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The view's codec is built from the system file the one way (system_codec): with its
    key, scheme, replay window, max_age, max_skew and serializer, none dropped."""
    key = tmp_path / "hmac.key"
    key.write_text("5eed" * 16 + "\n")
    key.chmod(0o600)
    security = (
        f'[security]\nkey_file = "{key}"\nsignature_scheme = "hmac-sha512"\n'
        "replay_window = 16\nmax_age = 5.0\nmax_skew = 0.5\n\n"
    )
    path = write_system(node_toml("alpha"), extra=security)
    path.write_text(path.read_text().replace("[system]\n", '[system]\nserializer = "json"\n', 1))
    system = load_system(path)
    codec = Monitor(system, demo_database()).codec
    assert (codec.key, codec.signature_scheme) == (system.hmac_key(), "hmac-sha512")
    assert (codec.replay_window, codec.max_age, codec.max_skew) == (16, 5.0, 0.5)
    assert codec.serializer is Serializer.JSON
