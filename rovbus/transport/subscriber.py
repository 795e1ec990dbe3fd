"""Subscribing by topic prefix to one or more PUB (or XPUB) endpoints.

ZeroMQ filters by byte prefix on the first frame, which is the topic. Messages that fail
to decode or verify are counted and skipped: a subscriber only ever yields good messages.
"""

from __future__ import annotations

from collections.abc import Iterable

import zmq
import zmq.asyncio

from rovbus.transport.channel import Channel, Rejected
from rovbus.transport.requester import SocketSetup
from rovbus.transport.sockets import DEFAULT_OPTIONS, SocketOptions, connect
from rovbus.transport.stats import SocketStats
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message


class Subscriber:
    def __init__(
        self,
        context: zmq.asyncio.Context,
        endpoints: Iterable[str],
        codec: Codec,
        prefixes: Iterable[str] = ("",),
        *,
        options: SocketOptions = DEFAULT_OPTIONS,
        setup: SocketSetup | None = None,
    ) -> None:
        sock = context.socket(zmq.SUB)
        options.apply(sock)
        if setup is not None:
            setup(sock)
        for prefix in prefixes:
            sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        try:
            for endpoint in endpoints:
                connect(sock, endpoint, "sub")
        except BaseException:
            sock.close(linger=0)
            raise
        self.channel = Channel("sub", sock, codec)
        self.last_rejected: Rejected | None = None

    @property
    def stats(self) -> SocketStats:
        return self.channel.stats

    def subscribe(self, prefix: str) -> None:
        self.channel.socket.setsockopt(zmq.SUBSCRIBE, prefix.encode())

    def unsubscribe(self, prefix: str) -> None:
        self.channel.socket.setsockopt(zmq.UNSUBSCRIBE, prefix.encode())

    async def recv(self) -> Message:
        """The next message that decodes and verifies."""
        while True:
            got = await self.channel.recv()
            if isinstance(got, Message):
                return got
            self.last_rejected = got

    def close(self, linger_ms: int | None = 0) -> None:
        self.channel.close(linger_ms)
