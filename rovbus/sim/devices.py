"""Simulated vehicle devices: what they send, how their values move, what they obey.

Each device is a small model of a real unit. A periodic device is stepped on a fixed
timeline (``start + k / rate_hz``, so its rate does not drift with the loop's latency; a
step that falls a whole period behind is skipped and counted) and returns the frames of
that step, encoded with the demo DBC. Values vary slowly and plausibly: a dive profile for
depth, a gently swinging heading, a battery that discharges with the load, thrusters that
follow their setpoints with a first-order lag. Devices with inputs (thrusters, PDU) get the
frames addressed to them through :meth:`Device.on_frame`.

The devices know nothing of buses or sockets; :class:`rovbus.sim.harness.DeviceBus` runs
them and puts their frames on a python-can bus.
"""

from __future__ import annotations

import abc
import asyncio
import math
import random
from collections.abc import Callable
from typing import ClassVar

import can
from cantools.database.can import Database

from rovbus.config.models import (
    BatteryDevice,
    DepthDevice,
    ImuDevice,
    LeakDevice,
    PduDevice,
    ThrustersDevice,
)
from rovbus.sim.dbc import MessageCodec

__all__ = [
    "PERIODIC",
    "Battery",
    "DepthSensor",
    "Device",
    "Emit",
    "Imu",
    "LeakSensor",
    "Pdu",
    "PeriodicDevice",
    "Thrusters",
]

#: hand frames to the bus (non-blocking: the harness queues them for its send thread)
Emit = Callable[[list[can.Message]], None]

GRAVITY = 9.81
SEAWATER = 1025.0  # kg/m^3
ATMOSPHERE_KPA = 101.325


def _frame(arbitration_id: int, data: bytes, extended: bool = False) -> can.Message:
    return can.Message(arbitration_id=arbitration_id, data=data, is_extended_id=extended)


class Device(abc.ABC):
    """A simulated unit on one bus. Subclasses implement :meth:`run`."""

    kind: ClassVar[str] = ""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = 0
        self.received = 0

    def accepts(self, arbitration_id: int, extended: bool) -> bool:
        """True for the frames this device listens to."""
        return False

    def on_frame(self, msg: can.Message, now: float) -> None:  # noqa: B027 (optional hook)
        """A frame addressed to this device (``accepts`` said yes); ``now`` is loop time.
        Devices that take no frames keep this default, which ignores it."""

    @abc.abstractmethod
    async def run(self, emit: Emit) -> None:
        """Send until cancelled."""

    def status(self) -> dict[str, object]:
        return {"kind": self.kind, "sent": self.sent, "received": self.received}


class PeriodicDevice(Device):
    """A device that sends a step's frames ``rate_hz`` times a second on a fixed timeline."""

    def __init__(self, name: str, rate_hz: float, seed: int) -> None:
        super().__init__(name)
        self.period = 1.0 / rate_hz
        self.rng = random.Random(seed)
        self.skipped = 0
        self._t0: float | None = None

    @abc.abstractmethod
    def step(self, t: float, dt: float) -> list[can.Message]:
        """The frames of the step at ``t`` seconds since the device started; ``dt`` is the
        time since the previous step."""

    async def run(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        if self._t0 is None:
            self._t0 = start
        k = 0
        previous = start
        while True:
            now = loop.time()
            due = start + k * self.period
            if now - due > self.period:  # fell behind (a stalled loop): skip, do not burst
                missed = int((now - due) / self.period)
                self.skipped += missed
                k += missed
                due = start + k * self.period
            if due > now:
                await asyncio.sleep(due - now)
            now = loop.time()
            frames = self.step(now - self._t0, now - previous)
            previous = now
            self.sent += len(frames)
            emit(frames)
            k += 1

    def noise(self, scale: float) -> float:
        return self.rng.gauss(0.0, scale)

    def status(self) -> dict[str, object]:
        return {**super().status(), "rate_hz": round(1.0 / self.period, 3), "skipped": self.skipped}


class Thrusters(PeriodicDevice):
    """``count`` ESCs: rpm follows the setpoint with a first-order lag (time constant
    ``TAU``), current grows with rpm^2.5, temperature follows current slowly. A stop-all
    frame (data[0] != 0) sets every setpoint to 0 and reports ``stopped`` until the next
    nonzero setpoint."""

    kind = "thrusters"
    TAU = 0.35  # s, rpm response
    THERMAL_TAU = 40.0  # s
    MAX_RPM = 4000

    def __init__(self, config: ThrustersDevice, db: Database, seed: int) -> None:
        super().__init__("thrusters", config.rate_hz, seed)
        self.config = config
        self.status_codec = MessageCodec(db, "ThrusterStatus0")
        self.setpoint_codec = MessageCodec(db, "ThrusterSetpoint0")
        n = config.count
        self.setpoints = [0.0] * n
        self.rpm = [0.0] * n
        self.temperature = [18.0 + self.rng.uniform(-1, 1) for _ in range(n)]
        self.stopped = [False] * n
        self.supply = 48.0

    def accepts(self, arbitration_id: int, extended: bool) -> bool:
        c = self.config
        if extended:
            return False
        return arbitration_id == c.stop_id or 0 <= arbitration_id - c.setpoint_id < c.count

    def on_frame(self, msg: can.Message, now: float) -> None:
        self.received += 1
        c = self.config
        if msg.arbitration_id == c.stop_id:
            if msg.data and msg.data[0]:
                self.setpoints = [0.0] * c.count
                self.stopped = [True] * c.count
            return
        i = msg.arbitration_id - c.setpoint_id
        if len(msg.data) < 2:
            return
        rpm = float(self.setpoint_codec.decode(bytes(msg.data[:2]).ljust(2, b"\0"))["RpmSetpoint"])
        self.setpoints[i] = max(-self.MAX_RPM, min(self.MAX_RPM, rpm))
        if rpm:
            self.stopped[i] = False

    def step(self, t: float, dt: float) -> list[can.Message]:
        c = self.config
        alpha = 1.0 - math.exp(-dt / self.TAU) if dt > 0 else 0.0
        beta = 1.0 - math.exp(-dt / self.THERMAL_TAU) if dt > 0 else 0.0
        frames = []
        total = 0.0
        for i in range(c.count):
            self.rpm[i] += (self.setpoints[i] - self.rpm[i]) * alpha
            rpm = self.rpm[i]
            spinning = abs(rpm) > 5
            current = 0.25 + 18.0 * (abs(rpm) / self.MAX_RPM) ** 2.5 + abs(self.noise(0.03))
            total += current
            self.temperature[i] += (18.0 + 1.6 * current - self.temperature[i]) * beta
            state = 2 if self.stopped[i] else (1 if spinning or self.setpoints[i] else 0)
            values = {
                "Rpm": round(rpm + (self.noise(3.0) if spinning else 0.0)),
                "Current": current,
                "Temperature": round(self.temperature[i]),
                "State": state,
                "BusVoltage": self.supply - 0.01 * total + self.noise(0.02),
            }
            frames.append(_frame(c.base_id + i, self.status_codec.encode(values)))
        return frames

    def status(self) -> dict[str, object]:
        return {
            **super().status(),
            "setpoints": [round(s) for s in self.setpoints],
            "rpm": [round(r) for r in self.rpm],
        }


class DepthSensor(PeriodicDevice):
    """Depth follows a slow dive profile (descend, hold, ascend, ~4 min cycle) plus swell."""

    kind = "depth"
    CYCLE = 240.0

    def __init__(self, config: DepthDevice, db: Database, seed: int) -> None:
        super().__init__("depth", config.rate_hz, seed)
        self.config = config
        self.codec = MessageCodec(db, "Depth")

    def depth_at(self, t: float) -> float:
        phase = (t / self.CYCLE) % 1.0
        shape = 0.5 - 0.5 * math.cos(2 * math.pi * phase)  # 0 -> 1 -> 0
        swell = 0.15 * math.sin(2 * math.pi * t / 8.0)
        return 2.0 + (self.config.max_depth - 2.0) * shape + swell

    def step(self, t: float, dt: float) -> list[can.Message]:
        depth = self.depth_at(t) + self.noise(0.005)
        pressure = ATMOSPHERE_KPA + SEAWATER * GRAVITY * depth / 1000.0
        values = {"Depth": depth, "Pressure": pressure, "WaterTemp": 14.0 - 0.04 * depth}
        return [_frame(self.config.base_id, self.codec.encode(values))]


class Imu(PeriodicDevice):
    """Heading swings slowly round a course that drifts; pitch and roll rock with the sea."""

    kind = "imu"

    def __init__(self, config: ImuDevice, db: Database, seed: int) -> None:
        super().__init__("imu", config.rate_hz, seed)
        self.config = config
        self.codec = MessageCodec(db, "ImuAttitude")
        self.course = self.rng.uniform(0, 360)

    def heading_at(self, t: float) -> float:
        return self.course + 2.0 * t + 25.0 * math.sin(2 * math.pi * t / 90.0)

    def step(self, t: float, dt: float) -> list[can.Message]:
        heading = self.heading_at(t) % 360.0
        rate = 2.0 + 25.0 * 2 * math.pi / 90.0 * math.cos(2 * math.pi * t / 90.0)
        values = {
            "Heading": min(heading + self.noise(0.05), 359.99) % 360.0,
            "Pitch": 2.5 * math.sin(2 * math.pi * t / 7.0) + self.noise(0.05),
            "Roll": 4.0 * math.sin(2 * math.pi * t / 5.3) + self.noise(0.05),
            "YawRate": rate + self.noise(0.1),
        }
        return [_frame(self.config.base_id, self.codec.encode(values))]


class Battery(PeriodicDevice):
    """A lithium pack: the load varies slowly, charge falls with it (coulomb counting), the
    voltage follows charge and sags with current."""

    kind = "battery"

    def __init__(self, config: BatteryDevice, db: Database, seed: int) -> None:
        super().__init__("battery", config.rate_hz, seed)
        self.config = config
        self.codec = MessageCodec(db, "BatteryStatus")
        self.soc = 92.0
        self.temperature = 24.0

    def step(self, t: float, dt: float) -> list[can.Message]:
        c = self.config
        current = 14.0 + 6.0 * math.sin(2 * math.pi * t / 60.0) + self.noise(0.3)
        self.soc = max(0.0, self.soc - current * dt / 3600.0 / c.capacity_ah * 100.0)
        cell = 3.3 + 0.88 * self.soc / 100.0 - current * 0.0015
        self.temperature += (22.0 + 0.3 * current - self.temperature) * min(1.0, dt / 120.0)
        values = {
            "PackVoltage": c.cells * cell + self.noise(0.01),
            "PackCurrent": current,
            "StateOfCharge": round(self.soc * 2) / 2,
            "Temperature": round(self.temperature),
            "CellMin": cell - 0.012,
            "CellMax": cell + 0.009,
        }
        return [_frame(c.base_id, self.codec.encode(values))]


class LeakSensor(PeriodicDevice):
    """Three dry probes; humidity and housing temperature drift a little."""

    kind = "leak"

    def __init__(self, config: LeakDevice, db: Database, seed: int) -> None:
        super().__init__("leak", config.rate_hz, seed)
        self.config = config
        self.codec = MessageCodec(db, "LeakStatus")
        self.leaks = [0, 0, 0]

    def step(self, t: float, dt: float) -> list[can.Message]:
        main, aft, camera = self.leaks
        values = {
            "LeakMain": main,
            "LeakAft": aft,
            "LeakCamera": camera,
            "Humidity": 32.0 + 3.0 * math.sin(2 * math.pi * t / 300.0) + self.noise(0.2),
            "HousingTemp": 29.0 + 2.0 * math.sin(2 * math.pi * t / 600.0) + self.noise(0.05),
        }
        return [_frame(self.config.base_id, self.codec.encode(values))]


class Pdu(PeriodicDevice):
    """Relays switched by ``command_id + i`` (data[0]: 0 off, 1 on), lights dimmed by
    ``lights_id``; reports relay states, bus voltage and the total load."""

    kind = "pdu"
    RELAYS = 16
    LOAD_A = (3.0, 1.2, 0.8, 0.8, 2.5, 0.5, 0.5, 0.3)  # per relay; others 0.2 A

    def __init__(self, config: PduDevice, db: Database, seed: int) -> None:
        super().__init__("pdu", config.rate_hz, seed)
        self.config = config
        self.codec = MessageCodec(db, "PduStatus")
        self.relays = 0b0000_0000_0000_0011  # main computer and cameras on at power-up
        self.lights = 0

    def accepts(self, arbitration_id: int, extended: bool) -> bool:
        c = self.config
        if extended:
            return False
        return arbitration_id == c.lights_id or 0 <= arbitration_id - c.command_id < self.RELAYS

    def on_frame(self, msg: can.Message, now: float) -> None:
        self.received += 1
        if not msg.data:
            return
        c = self.config
        if msg.arbitration_id == c.lights_id:
            self.lights = min(100, int(msg.data[0]))
            return
        bit = 1 << (msg.arbitration_id - c.command_id)
        self.relays = self.relays | bit if msg.data[0] else self.relays & ~bit

    def step(self, t: float, dt: float) -> list[can.Message]:
        load = sum(
            (self.LOAD_A[i] if i < len(self.LOAD_A) else 0.2)
            for i in range(self.RELAYS)
            if self.relays >> i & 1
        )
        load += self.lights * 0.06 + abs(self.noise(0.05))
        values = {
            "Relays": self.relays,
            "BusVoltage": 48.0 - 0.02 * load + self.noise(0.02),
            "TotalCurrent": load,
            "LightsLevel": self.lights,
            "Temperature": round(30 + 0.4 * load),
        }
        return [_frame(self.config.base_id, self.codec.encode(values))]


#: the periodic device of each ``devices`` kind (``replay`` is :class:`rovbus.sim.replay.Replay`)
PERIODIC: dict[str, Callable[..., PeriodicDevice]] = {
    "thrusters": Thrusters,
    "depth": DepthSensor,
    "imu": Imu,
    "battery": Battery,
    "leak": LeakSensor,
    "pdu": Pdu,
}
