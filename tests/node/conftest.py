"""Fixtures for node tests: a running in-process node and a client codec."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import zmq.asyncio

from rovbus.config import load_system
from rovbus.node.daemon import NodeDaemon
from rovbus.wire.codec import Codec
from tests.helpers.systemfile import node_toml
from tests.node.running import RunningNode


@pytest.fixture
async def start_node(write_system) -> AsyncIterator[Callable[..., object]]:  # type: ignore[no-untyped-def]
    started: list[RunningNode] = []

    async def start(name: str = "alpha", **node_kwargs: object) -> RunningNode:
        path = write_system(node_toml(name, **node_kwargs))  # type: ignore[arg-type]
        system = load_system(path)
        daemon = NodeDaemon(system, name)
        await daemon.start()
        task = asyncio.create_task(daemon.serve())
        ctx = zmq.asyncio.Context()
        node = RunningNode(daemon, system, path, ctx, Codec(username="tester"), task)
        started.append(node)
        return node

    yield start
    for node in started:
        node.daemon.request_stop()
        await asyncio.wait_for(node.task, 5)
        await node.daemon.aclose()
        node.ctx.destroy(linger=0)
