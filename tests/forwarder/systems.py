"""Systems of nodes and forwarders as processes, and a client outside the forwarder."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq.asyncio

from rovbus.config import SystemConfig, load_system
from rovbus.errors import RequestTimeout
from rovbus.transport import Requester, Subscriber
from rovbus.transport.curve import SocketSetup
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from tests.helpers.daemons import running
from tests.helpers.notify import FakeSystemd
from tests.node.running import wait_for


@dataclass
class System:
    path: Path
    config: SystemConfig
    procs: dict[str, tuple[subprocess.Popen[str], FakeSystemd]]

    def proc(self, name: str) -> subprocess.Popen[str]:
        return self.procs[name][0]


@contextmanager
def system_running(
    path: Path,
    tmp: Path,
    nodes: list[str],
    forwarders: list[str],
    forwarder_args: tuple[str, ...] = (),
) -> Iterator[System]:
    with running(path, tmp, nodes, forwarders, forwarder_args=forwarder_args) as procs:
        yield System(path, load_system(path), procs)


def with_interval(node_table: str, interval: float) -> str:
    """A ``node_toml`` table with its own heartbeat interval."""
    head, rest = node_table.split("\n", 1)
    return f"{head}\nheartbeat_interval = {interval}\n{rest}"


class Outside:
    """A client on the outer side of a forwarder: subscribes to its pub, requests by name."""

    def __init__(
        self,
        system: SystemConfig,
        forwarder: str,
        *,
        setup: SocketSetup | None = None,
        key: bytes | None = None,
    ) -> None:
        self.system = system
        self.fwd = system.forwarder(forwarder)
        self.setup = setup
        self.ctx = zmq.asyncio.Context()
        self.codec = Codec(system.hmac_key() if key is None else key, username="tester")
        self._closers: list[Callable[[], None]] = []

    def subscriber(self, *prefixes: str) -> Subscriber:
        sub = Subscriber(
            self.ctx, [str(self.fwd.endpoints.pub)], self.codec, prefixes, setup=self.setup
        )
        self._closers.append(sub.close)
        return sub

    async def request(
        self,
        node: str,
        msg_type: str,
        content: dict[str, Any] | None = None,
        *,
        channel: str = "shell",
        timeout: float = 10.0,
        identities: tuple[bytes, ...] | None = None,
    ) -> Message:
        codec = await self.start_codec(node, timeout)
        req = Requester(self.ctx, str(self.fwd.endpoints.request), codec, setup=self.setup)
        try:
            ids = (node.encode(), channel.encode()) if identities is None else identities
            message = codec.message(msg_type, content or {}, identities=ids)
            return await req.request(message, timeout=timeout)
        finally:
            req.close()

    async def control(
        self, msg_type: str, content: dict[str, Any] | None = None, *, timeout: float = 10.0
    ) -> Message:
        codec = await self.start_codec(self.fwd.name, timeout)
        req = Requester(self.ctx, str(self.fwd.endpoints.control), codec, setup=self.setup)
        try:
            return await req.request(codec.message(msg_type, content or {}), timeout=timeout)
        finally:
            req.close()

    async def start_codec(self, name: str, timeout: float) -> Codec:
        """The codec for requests to node or forwarder ``name``: signed with the key of its
        current start, from the session of its heartbeat (the forwarder's cache replays it
        at once); without a key, ours. RequestTimeout if no heartbeat comes."""
        if not self.codec.signer.enabled:
            return self.codec
        sub = self.subscriber(f"{name}/hb")
        try:
            beat = await wait_for(sub, lambda m: m.msg_type == "heartbeat", timeout)
        except TimeoutError:
            raise RequestTimeout(f"no heartbeat from {name} within {timeout:g} s") from None
        finally:
            sub.close()
        return self.codec.for_start(name, beat.header["session"])

    async def stats(self) -> dict[str, Any]:
        reply = await self.control("stats_request")
        assert reply.content["status"] == "ok", reply.content
        return reply.content

    def close(self) -> None:
        for close in self._closers:
            close()
        self.ctx.destroy(linger=0)
