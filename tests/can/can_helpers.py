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
    ``fail_recv`` / ``fail_send`` make the next receive / send raise CanOperationError.
    """

    def __init__(self, *args: Any, gated: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        if not gated:
            self.gate.set()
        self.entered = threading.Event()
        self.fail_recv = threading.Event()
        self.fail_send = threading.Event()

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if self.fail_recv.is_set():
            raise can.CanOperationError("adapter unplugged (test)")
        if timeout is not None and timeout > 0.01:
            # wake often enough to notice fail_recv
            timeout = 0.01
        return super()._recv_internal(timeout)  # type: ignore[no-any-return]

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        self.entered.set()
        if not self.gate.wait(WAIT_S):
            raise can.CanOperationError("gate never opened (test)")
        if self.fail_send.is_set():
            raise can.CanOperationError("bus-off (test)")
        super().send(msg, timeout)
