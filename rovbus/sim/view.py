"""What the demo shows: the node table, decoded telemetry, and the end-of-run summary.

:class:`Monitor` subscribes straight to every node's pub endpoint (the supervisor runs on
the vehicle's side of the tether, so it needs no forwarder): heartbeats feed a
:class:`~rovbus.client.NodeTable`, and the frames of the simulated devices are kept (the
latest of each ID) and decoded with the demo DBC only when a screen is drawn.
:func:`render` draws one screen as text; the CLI repaints it in place with ANSI codes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zmq.asyncio
from cantools.database.can import Database

from rovbus.client import NodeRow, NodeTable
from rovbus.config import SystemConfig
from rovbus.config.models import ReplayDevice
from rovbus.config.reach import node_endpoints
from rovbus.sim.supervisor import Child
from rovbus.transport import Subscriber
from rovbus.transport.system_codec import system_codec
from rovbus.wire.canframe import CanFrame, frames_from_batch
from rovbus.wire.message import Message
from rovbus.wire.topics import can_topic

__all__ = ["Monitor", "Summary", "render", "summarize"]

#: the DBC message each periodic device kind sends
_DEVICE_MESSAGES = {
    "depth": "Depth",
    "imu": "ImuAttitude",
    "battery": "BatteryStatus",
    "leak": "LeakStatus",
    "pdu": "PduStatus",
}


@dataclass(frozen=True)
class _Watched:
    kind: str
    message: str
    index: int  # thruster number, else 0


class Monitor:
    """Heartbeats and device frames of every node of ``system``."""

    def __init__(self, system: SystemConfig, db: Database) -> None:
        self.system = system
        self.db = db
        self.table = NodeTable(
            system.system.dead_after, [(n.name, n.group) for n in system.nodes.values()]
        )
        #: (node, bus, id) -> what it is
        self.watched: dict[tuple[str, str, int], _Watched] = {}
        self.latest: dict[tuple[str, str, int], bytes] = {}
        self.prefixes: list[str] = []
        for node in system.nodes.values():
            self.prefixes.append(f"{node.name}/hb")
            for bus in node.buses:
                ids: list[int] = []
                for device in bus.devices:
                    if device.kind == "thrusters":
                        for i in range(device.count):
                            key = (node.name, bus.name, device.base_id + i)
                            self.watched[key] = _Watched("thrusters", "ThrusterStatus0", i)
                            ids.append(device.base_id + i)
                    elif device.kind in _DEVICE_MESSAGES and not isinstance(device, ReplayDevice):
                        key = (node.name, bus.name, device.base_id)
                        self.watched[key] = _Watched(device.kind, _DEVICE_MESSAGES[device.kind], 0)
                        ids.append(device.base_id)
                if bus.batch is not None:
                    self.prefixes.append(f"{node.name}/can/{bus.name}")  # batches and single
                else:
                    self.prefixes += [can_topic(node.name, bus.name, i, False) for i in ids]
        self.messages = 0
        self.codec = system_codec(system, "rovbus-demo")

    def observe(self, msg: Message) -> None:
        self.messages += 1
        kind = msg.msg_type
        if kind == "heartbeat":
            self.table.observe(msg, time.monotonic())
            return
        node = msg.header.get("username", "")
        if kind == "can_frame":
            try:
                frame = CanFrame.from_content(msg.content)
            except ValueError:
                return
            key = (str(node), frame.bus, frame.arbitration_id)
            if key in self.watched:
                self.latest[key] = frame.data
        elif kind == "can_batch":
            try:
                frames = frames_from_batch(msg.content)
            except ValueError:
                return
            for frame in frames:
                key = (str(node), frame.bus, frame.arbitration_id)
                if key in self.watched:
                    self.latest[key] = frame.data

    async def run(self, ctx: zmq.asyncio.Context) -> None:
        """Receive until cancelled."""
        endpoints = [str(node_endpoints(self.system, name)["pub"]) for name in self.system.nodes]
        sub = Subscriber(ctx, endpoints, self.codec, self.prefixes)
        try:
            while True:
                self.observe(await sub.recv())
        finally:
            sub.close()

    def telemetry(self) -> dict[str, Any]:
        """The latest decoded values: ``{kind: {signal: value}}``; thrusters as a list."""
        out: dict[str, Any] = {}
        thrusters: dict[int, dict[str, Any]] = {}
        for key, data in self.latest.items():
            what = self.watched[key]
            try:
                values = self.db.get_message_by_name(what.message).decode(
                    data, decode_choices=False
                )
            except Exception:  # a corrupted frame (fault injection) may not decode
                continue
            if not isinstance(values, dict):
                continue
            if what.kind == "thrusters":
                thrusters[what.index] = values
            else:
                out[what.kind] = values
        if thrusters:
            out["thrusters"] = [thrusters[i] for i in sorted(thrusters)]
        return out


# -- the screen ------------------------------------------------------------------------------


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}/s"


def _fmt(values: dict[str, Any], name: str, spec: str, unit: str = "") -> str:
    value = values.get(name)
    if not isinstance(value, int | float):
        return "-"
    return f"{value:{spec}}{unit}"


def render(
    rows: Sequence[NodeRow],
    telemetry: dict[str, Any],
    children: Sequence[Child],
    *,
    elapsed: float,
    title: str,
) -> list[str]:
    """One screen of the live view, as lines."""
    lines = [f"rovbus demo: {title}   up {elapsed:,.0f} s   (Ctrl-C stops everything)", ""]
    lines.append(
        f"{'NODE':<12} {'STATE':<9} {'UPTIME':>7}  {'BUS':<6} {'BUS STATE':<9} "
        f"{'RX':>9} {'TX':>7} {'ERR':>4}  HELM"
    )
    for row in rows:
        uptime = "-" if row.uptime is None else f"{row.uptime:,.0f} s"
        state = row.state if row.node_state in (None, "ok") else f"{row.node_state}"
        if not row.buses:
            lines.append(f"{row.node:<12} {state:<9} {uptime:>7}")
        for i, bus in enumerate(row.buses):
            head = f"{row.node:<12} {state:<9} {uptime:>7}" if i == 0 else " " * 30
            lines.append(
                f"{head}  {bus.name:<6} {bus.state:<9} {_rate(bus.rx_rate):>9} "
                f"{_rate(bus.tx_rate):>7} {bus.errors:>4}  {bus.helm or '-'}"
            )
    lines.append("")
    imu = telemetry.get("imu", {})
    depth = telemetry.get("depth", {})
    battery = telemetry.get("battery", {})
    leak = telemetry.get("leak", {})
    lines.append(
        f"depth {_fmt(depth, 'Depth', '7.2f', ' m')}   heading {_fmt(imu, 'Heading', '6.1f', '°')}"
        f"   pitch {_fmt(imu, 'Pitch', '5.1f', '°')}   roll {_fmt(imu, 'Roll', '5.1f', '°')}"
    )
    leaks = [n for n in ("LeakMain", "LeakAft", "LeakCamera") if leak.get(n)]
    leak_text = ("LEAK: " + ", ".join(leaks)) if leaks else ("dry" if leak else "-")
    lines.append(
        f"battery {_fmt(battery, 'PackVoltage', '5.1f', ' V')}"
        f"  {_fmt(battery, 'PackCurrent', '5.1f', ' A')}"
        f"  {_fmt(battery, 'StateOfCharge', '5.1f', ' %')}   leak {leak_text}"
    )
    pdu = telemetry.get("pdu")
    if pdu:
        relays = int(pdu.get("Relays", 0))
        lines.append(
            f"pdu relays {relays:016b}  lights {_fmt(pdu, 'LightsLevel', '3.0f', ' %')}"
            f"  {_fmt(pdu, 'BusVoltage', '5.1f', ' V')}  {_fmt(pdu, 'TotalCurrent', '5.1f', ' A')}"
        )
    thrusters = telemetry.get("thrusters", [])
    if thrusters:
        rpm = " ".join(f"{t.get('Rpm', 0):>6.0f}" for t in thrusters)
        amps = " ".join(f"{t.get('Current', 0):>6.1f}" for t in thrusters)
        lines.append(f"thruster rpm {rpm}")
        lines.append(f"current A    {amps}")
    lines.append("")
    for child in children:
        mark = "" if child.running else "  <-- not running"
        lines.append(
            f"{child.role:<9} {child.name:<12} pid {child.pid or '-':<8} {child.status}{mark}"
        )
    return lines


# -- the summary -----------------------------------------------------------------------------


@dataclass
class Summary:
    lines: list[str]
    ok: bool


def summarize(
    system: SystemConfig,
    rows: Sequence[NodeRow],
    children: Sequence[Child],
    *,
    duration: float,
    skipped: Sequence[str] = (),
) -> Summary:
    """Each node by name with the frames each bus carried (heartbeat counters), and every
    process that died. Not ok when a process died or a bus carried nothing."""
    ok = True
    lines = [f"rovbus demo: {system.name}, ran {duration:.1f} s"]
    by_name = {row.node: row for row in rows}
    for node in system.nodes.values():
        row = by_name.get(node.name)
        if row is None or not row.buses:
            lines.append(f"  node {node.name}: no heartbeat heard")
            ok = False
            continue
        buses = []
        for bus in row.buses:
            frames = bus.rx + bus.tx
            buses.append(f"{bus.name} {frames} frames ({bus.state})")
            if frames == 0:
                ok = False
        lines.append(
            f"  node {node.name}: {row.state}, up {row.uptime or 0:.1f} s; " + ", ".join(buses)
        )
    for child in children:
        if child.role != "node":
            state = "ok" if not child.died else "died"
            lines.append(f"  {child.role} {child.name}: {state}")
        for code in child.died:
            ok = False
            lines.append(
                f"  DIED: {child.role} {child.name} (exit status {code}); log {child.log_path}"
            )
            lines += [f"    | {line}" for line in child.log_tail(5)]
    for note in skipped:
        lines.append(f"  skipped: {note}")
    empty = [line for line in lines if " 0 frames" in line]
    lines.append(
        "result: ok" if ok else "result: FAILED" + (" (a bus carried nothing)" if empty else "")
    )
    return Summary(lines, ok)
