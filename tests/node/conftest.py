"""Fixtures for node tests: a running in-process node and a client codec."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import zmq.asyncio

from rovbus.config import SystemConfig, load_system
from rovbus.node.daemon import NodeDaemon
from rovbus.transport import Requester, Subscriber
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from tests.helpers.systemfile import node_toml


@dataclass
class RunningNode:
    daemon: NodeDaemon
    system: SystemConfig
    path: Path
    ctx: zmq.asyncio.Context
    codec: Codec
    task: asyncio.Task[None]

    def requester(self, channel: str = "shell") -> Requester:
        endpoint = str(getattr(self.daemon.config.endpoints, channel))
        return Requester(self.ctx, endpoint, self.codec)

    async def request(
        self, msg_type: str, content: dict | None = None, channel: str = "shell"
    ) -> Message:
        req = self.requester(channel)
        try:
            return await req.request(self.codec.message(msg_type, content or {}), timeout=5)
        finally:
            req.close()

    def subscriber(self, *prefixes: str) -> Subscriber:
        return Subscriber(
            self.ctx, [str(self.daemon.config.endpoints.pub)], self.codec, prefixes or ("",)
        )


async def wait_for(
    sub: Subscriber, predicate: Callable[[Message], bool], timeout: float = 5.0
) -> Message:
    """The first message on ``sub`` that satisfies ``predicate``."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await sub.recv()
            if predicate(msg):
                return msg


async def subscribed(node: RunningNode, *prefixes: str) -> Subscriber:
    """A subscriber that has provably joined: it has seen a heartbeat of the node."""
    name = node.daemon.name
    sub = node.subscriber(f"{name}/hb", *prefixes)
    await wait_for(sub, lambda m: m.msg_type == "heartbeat")
    return sub


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
