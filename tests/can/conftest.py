"""Fixtures for the CAN layer: unique virtual channels, port factory, leak checks.

Every test gets its own virtual channel name, so buses of different tests never meet.
``no_leaked_buses`` (autouse) fails a test that leaves a python-can bus open, and
``make_port`` fails a test that leaves a :class:`~rovbus.can.CanPort` open (closing it so
the next test starts clean).
"""

from __future__ import annotations

import gc
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import can
import pytest

from rovbus.can import CanPort
from rovbus.config.models import BusConfig
from rovbus.wire.canframe import CanFrame


def _open_buses() -> list[can.BusABC]:
    return [
        o
        for o in gc.get_objects()
        if isinstance(o, can.BusABC) and not getattr(o, "_is_shutdown", True)
    ]


@pytest.fixture(autouse=True)
def no_leaked_buses(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail the test if it leaves a python-can bus open (or lets one be collected open)."""
    caplog.set_level(logging.WARNING, logger="can")
    before = {id(b) for b in _open_buses()}
    yield
    leaked = [b for b in _open_buses() if id(b) not in before]
    for bus in leaked:
        bus.shutdown()
    unclosed = [r for r in caplog.records if "was not properly shut down" in r.getMessage()]
    if leaked or unclosed:
        pytest.fail(
            f"test left python-can buses open: {leaked or [r.getMessage() for r in unclosed]}"
        )


@pytest.fixture
def channel() -> str:
    return f"rovbus-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def make_port() -> AsyncIterator[Callable[..., CanPort]]:
    """Build ports; at teardown fail the test for any port still open (and close it)."""
    ports: list[CanPort] = []

    def factory(
        config: BusConfig, on_frames: Callable[[list[CanFrame]], None], **kw: Any
    ) -> CanPort:
        port = CanPort(config, on_frames, **kw)
        ports.append(port)
        return port

    yield factory
    still_open = [repr(p) for p in ports if p.state != "closed"]
    for port in ports:
        await port.aclose(deadline=0.1)
    if still_open:
        pytest.fail(f"test left CAN ports open: {still_open}")


@pytest.fixture
def peer(channel: str) -> Iterator[can.BusABC]:
    """A second python-can bus on the test's channel: the other nodes on the wire."""
    bus = can.Bus(interface="virtual", channel=channel)
    yield bus
    bus.shutdown()
