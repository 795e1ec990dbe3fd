"""A node daemon running in the test's process, and a client codec to talk to it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import zmq.asyncio

from rovbus.config import SystemConfig
from rovbus.node.daemon import NodeDaemon
from rovbus.transport import Requester, Subscriber
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message


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
