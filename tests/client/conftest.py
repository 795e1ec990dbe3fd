"""Fixtures for client tests: a node daemon in this process, and leak checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rovbus.config import SystemConfig, load_system
from rovbus.node.daemon import NodeDaemon
from tests.helpers.systemfile import node_toml


@pytest.fixture
async def node(write_system) -> AsyncIterator[tuple[SystemConfig, Path]]:  # type: ignore[no-untyped-def]
    """Node ``alpha`` (group ``vehicle``, bus ``can0``, heartbeat every 0.1 s) running."""
    path = write_system(
        node_toml("alpha", tx_allow='["0x0-0x7FF", "ext:0x0-0x1FFFFFFF"]'), interval=0.1
    )
    system = load_system(path)
    daemon = NodeDaemon(system, "alpha")
    await daemon.start()
    task = asyncio.create_task(daemon.serve())
    yield system, path
    daemon.request_stop()
    await asyncio.wait_for(task, 5)
    await daemon.aclose()
