"""Helpers for the CAN layer tests (imported by name: ``tests/can`` is on sys.path).

``tests/can`` has no ``__init__.py`` on purpose: as a regular package named ``can`` it
would shadow python-can whenever pytest puts ``tests/`` on sys.path.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import can
from can.interfaces import virtual

from rovbus.can import CanPort
from rovbus.config.models import BusConfig
from rovbus.wire.canframe import CanFrame

#: the longest any test waits for a condition
WAIT_S = 5.0


def bus_config(channel: str, **overrides: Any) -> BusConfig:
    """A bus on ``channel`` that may send every 11-bit ID; an override of None leaves its
    key out of the table."""
    values: dict[str, Any] = {
        "name": "main",
        "interface": "virtual",
        "channel": channel,
        "tx_allow": ["0x000-0x7FF"],
        "queue_size": 64,
    }
    values.update(overrides)
    return BusConfig.model_validate({k: v for k, v in values.items() if v is not None})


class Collector:
    """An ``on_frames`` consumer that tests can wait on."""

    def __init__(self) -> None:
        self.frames: list[CanFrame] = []
        self.calls = 0
        self._changed = asyncio.Event()

    def __call__(self, frames: list[CanFrame]) -> None:
        self.calls += 1
        self.frames.extend(frames)
        self._changed.set()

    def rx(self) -> list[CanFrame]:
        return [f for f in self.frames if f.direction == "rx"]

    def tx(self) -> list[CanFrame]:
        return [f for f in self.frames if f.direction == "tx"]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


class StateWatch:
    """An ``on_state`` callback that records states; wait for one to be reached."""

    def __init__(self) -> None:
        self.states: list[str] = []
        self._changed = asyncio.Event()

    def __call__(self, port: CanPort) -> None:
        self.states.append(port.state)
        self._changed.set()

    async def wait_for(self, state: str, count: int = 1, timeout: float = WAIT_S) -> None:
        async with asyncio.timeout(timeout):
            while self.states.count(state) < count:
                self._changed.clear()
                await self._changed.wait()


class GatedBus(virtual.VirtualBus):  # type: ignore[misc]
    """A real virtual bus whose ``send`` waits at a gate, and that can be made to fail.

    ``entered`` is set when a send reaches the gate; ``gate`` must be set to let it pass.
    ``fail_recv`` / ``fail_send`` make the next receive / send raise CanOperationError, and
    so does sending an ID in ``fail_ids``.
    """

    def __init__(self, *args: Any, gated: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.entered = threading.Event()
        self.fail_recv = threading.Event()
        self.fail_send = threading.Event()
        self.fail_ids: set[int] = set()

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if self.fail_recv.is_set():
            raise can.CanOperationError("adapter unplugged (test)")
        if timeout is not None and timeout > 0.01:
            # wake often enough to notice fail_recv
            timeout = 0.01
        return super()._recv_internal(timeout)  # type: ignore[no-any-return]

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        self._pass_gate()
        if self.fail_send.is_set() or msg.arbitration_id in self.fail_ids:
            raise can.CanOperationError("bus-off (test)")
        super().send(msg, timeout)

    async def arrived(self) -> None:
        """Wait until a send has reached the gate."""
        assert await asyncio.to_thread(self.entered.wait, WAIT_S), "no send came"

    def _pass_gate(self) -> None:
        self.entered.set()
        if not self.gate.wait(WAIT_S):
            raise can.CanOperationError("gate never opened (test)")


class StuckBus(GatedBus):
    """A GatedBus whose receive, once ``stick`` is set, blocks as a driver that ignores its
    timeout would (``stuck`` says it is blocked) until ``unstick`` is set, then returns a
    frame with ID ``LATE_ID``."""

    LATE_ID = 0x7AB

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stick = threading.Event()
        self.stuck = threading.Event()
        self.unstick = threading.Event()

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if self.stick.is_set():
            self.stuck.set()
            self.unstick.wait(WAIT_S)
            self.stick.clear()
            return can.Message(arbitration_id=self.LATE_ID, is_extended_id=False), False
        return super()._recv_internal(timeout)


class SteppedBus(GatedBus):
    """A GatedBus whose gate lets one send through per permit: ``allow(n)`` lets ``n`` more
    pass, ``arrived()`` waits for the next send to reach the gate."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._permits = threading.Semaphore(0)
        self._arrivals = threading.Semaphore(0)

    def allow(self, n: int = 1) -> None:
        self._permits.release(n)

    async def arrived(self) -> None:
        """Wait until the next send has reached the gate."""
        assert await asyncio.to_thread(self._arrivals.acquire, True, WAIT_S), "no send came"

    def _pass_gate(self) -> None:
        self._arrivals.release()
        if not self._permits.acquire(timeout=WAIT_S):
            raise can.CanOperationError("no permit to send (test)")
