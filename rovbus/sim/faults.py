"""Fault injection on a node's bus: drop, delay or corrupt received frames; bus-off.

:class:`FaultyBus` wraps the python-can bus a node opens (through ``NodeDaemon``'s
``bus_factories``) and applies the bus's :class:`Faults` on the receive path:

- ``drop P``: each frame is lost with probability P (counted);
- ``delay MS``: each frame is held MS milliseconds (order kept; the receive thread keeps
  reading while frames wait, so a delay adds latency, not a rate limit);
- ``corrupt P``: with probability P one payload bit is flipped (a frame a faulty gateway or
  transceiver mangled; a real controller's CRC would catch most of these, which is what
  ``bus-off`` models);
- ``bus_off``: receive and send raise ``can.CanOperationError`` and a reopen fails, as
  an adapter in bus-off does, until ``recover``. The node's port goes ``failed``, says so
  on ``<node>/status`` and in its heartbeats, and reopens (with its backoff) after recovery.

The settings are shared with the receive thread; plain attribute writes are atomic
enough for them. The wrapper has no file descriptor, so the node reads it with a thread.
"""

from __future__ import annotations

import collections
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import can

__all__ = ["Faults", "FaultyBus", "apply_fault", "faulty_factory"]


@dataclass
class Faults:
    """The faults in force on one bus, and what they did."""

    drop: float = 0.0
    delay_ms: float = 0.0
    corrupt: float = 0.0
    bus_off: bool = False
    dropped: int = 0
    delayed: int = 0
    corrupted: int = 0
    bus_offs: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def settings(self) -> dict[str, Any]:
        return {
            "drop": self.drop,
            "delay_ms": self.delay_ms,
            "corrupt": self.corrupt,
            "bus_off": self.bus_off,
            "dropped": self.dropped,
            "delayed": self.delayed,
            "corrupted": self.corrupted,
            "bus_offs": self.bus_offs,
        }

    def clear(self) -> None:
        self.drop = self.delay_ms = self.corrupt = 0.0
        self.bus_off = False


def _probability(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"{what} needs a probability between 0 and 1, got {value!r}")
    return float(value)


def apply_fault(faults: Faults, fault: str, value: object = None) -> None:
    """Change ``faults``: ``drop P``, ``delay MS``, ``corrupt P``, ``bus-off``,
    ``recover`` (bus-off ends), ``clear`` (every fault ends). ValueError if bad."""
    if fault == "drop":
        faults.drop = _probability(value, "drop")
    elif fault == "corrupt":
        faults.corrupt = _probability(value, "corrupt")
    elif fault == "delay":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 60000:
            raise ValueError(f"delay needs milliseconds between 0 and 60000, got {value!r}")
        faults.delay_ms = float(value)
    elif fault in ("bus-off", "bus_off"):
        if not faults.bus_off:
            faults.bus_offs += 1
        faults.bus_off = True
    elif fault == "recover":
        faults.bus_off = False
    elif fault == "clear":
        faults.clear()
    else:
        raise ValueError(
            f"unknown fault {fault!r}; expected drop P, delay MS, corrupt P, bus-off, "
            "recover or clear"
        )


class FaultyBus(can.BusABC):
    """A python-can bus that passes everything to ``inner``, with ``faults`` applied."""

    def __init__(self, inner: can.BusABC, faults: Faults) -> None:
        self._inner = inner
        self.faults = faults
        self._held: collections.deque[tuple[float, can.Message]] = collections.deque()
        super().__init__(channel=str(inner.channel_info))
        self.channel_info = f"faults on {inner.channel_info}"

    def _bus_off(self) -> can.CanOperationError:
        return can.CanOperationError("bus-off (injected fault)")

    def _apply_filters(self, filters: can.typechecking.CanFilters | None) -> None:
        self._inner.set_filters(filters)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        faults = self.faults
        deadline = None if timeout is None else time.monotonic() + timeout
        held = self._held
        while True:
            if faults.bus_off:
                held.clear()
                raise self._bus_off()
            now = time.monotonic()
            if held and held[0][0] <= now:
                return held.popleft()[1], True
            wait = 0.05
            if held:
                wait = min(wait, held[0][0] - now)
            if deadline is not None:
                if now >= deadline:
                    return None, True
                wait = min(wait, deadline - now)
            msg = self._inner.recv(max(0.0, wait))
            if msg is None:
                continue
            msg = self._mangle(msg)
            if msg is None:
                continue
            if faults.delay_ms > 0:
                faults.delayed += 1
                held.append((time.monotonic() + faults.delay_ms / 1000.0, msg))
            elif held:
                held.append((time.monotonic(), msg))  # keep order behind delayed frames
            else:
                return msg, True

    def _mangle(self, msg: can.Message) -> can.Message | None:
        faults = self.faults
        rng = faults.rng
        if faults.drop and rng.random() < faults.drop:
            faults.dropped += 1
            return None
        if faults.corrupt and msg.dlc and rng.random() < faults.corrupt:
            data = bytearray(msg.data)
            bit = rng.randrange(len(data) * 8)
            data[bit // 8] ^= 1 << (bit % 8)
            msg.data = data
            faults.corrupted += 1
        return msg

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        if self.faults.bus_off:
            raise self._bus_off()
        self._inner.send(msg, timeout)

    def fileno(self) -> int:
        return -1  # read by a thread, so delays never block the loop

    def shutdown(self) -> None:
        try:
            self._inner.shutdown()
        finally:
            super().shutdown()


def faulty_factory(make: Callable[[], can.BusABC], faults: Faults) -> Callable[[], can.BusABC]:
    """A bus factory for ``NodeDaemon``: ``make()`` wrapped in a :class:`FaultyBus`; while
    ``faults.bus_off`` it raises, as opening an adapter in bus-off does."""

    def factory() -> can.BusABC:
        if faults.bus_off:
            raise can.CanInitializationError("bus-off (injected fault)")
        return FaultyBus(make(), faults)

    return factory
