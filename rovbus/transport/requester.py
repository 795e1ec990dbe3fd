"""Request-reply over a DEALER socket, with a timeout and retries (the zguide's Lazy Pirate).

A reply is matched to its request by ``parent_header.msg_id``; stale replies to earlier
attempts are discarded. After a timeout the socket is closed and a fresh one connected, and
the same request (same ``msg_id``, a fresh date, so a fresh signature that the replay guard
accepts) is sent again; a rovbus node answers a repeated ``msg_id`` from its reply cache
instead of acting twice.

``Message.identities`` on the request are sent before the delimiter: through a forwarder
they name the node the request is for. Each attempt is signed, and its reply verified, by
the codec ``request`` is given for it: a daemon's start key changes when it restarts.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from rovbus.errors import RequestTimeout, WireError
from rovbus.transport.sockets import DEFAULT_OPTIONS, SocketOptions, connect
from rovbus.transport.stats import SocketStats, frames_size
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message, format_date

SocketSetup = Callable[[zmq.Socket[Any]], None]


class Requester:
    """Sends requests to one endpoint and awaits their replies."""

    def __init__(
        self,
        context: zmq.asyncio.Context,
        endpoint: str,
        codec: Codec,
        *,
        options: SocketOptions = DEFAULT_OPTIONS,
        setup: SocketSetup | None = None,
        name: str = "request",
    ) -> None:
        self.context = context
        self.endpoint = endpoint
        self.codec = codec
        self.options = options
        self.setup = setup  # e.g. CURVE client keys, applied before connect
        self.name = name
        self.stats = SocketStats()
        #: the replies taken, across attempts (whatever codec signs each attempt)
        self.replay_guard = codec.new_replay_guard()
        self._socket: zmq.asyncio.Socket | None = None
        self._lock = asyncio.Lock()

    def _open(self) -> zmq.asyncio.Socket:
        if self._socket is None:
            sock = self.context.socket(zmq.DEALER)
            self.options.apply(sock)
            if self.setup is not None:
                self.setup(sock)
            connect(sock, self.endpoint, self.name)
            self._socket = sock
        return self._socket

    def _discard(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None

    async def request(
        self,
        message: Message,
        timeout: float = 3.0,
        retries: int = 0,
        *,
        codec: Callable[[], Codec] | None = None,
    ) -> Message:
        """Send ``message`` and return its reply; ``RequestTimeout`` after every attempt failed.

        ``codec`` gives the codec of each attempt (default: this requester's)."""
        async with self._lock:
            attempt = message
            for n in range(retries + 1):
                signing = self.codec if codec is None else codec()
                if n:
                    header = dict(message.header, date=format_date(signing.clock()))
                    attempt = dataclasses.replace(message, header=header)
                sock = self._open()
                frames = signing.encode(attempt)
                await sock.send_multipart(frames)
                self.stats.messages_out += 1
                self.stats.bytes_out += frames_size(frames)
                try:
                    reply = self._reply_to(sock, message.msg_id, signing)
                    return await asyncio.wait_for(reply, timeout)
                except TimeoutError:
                    self._discard()
            raise RequestTimeout(
                f"no reply to {message.msg_type} from {self.endpoint}"
                f" after {retries + 1} attempt(s) of {timeout:g} s"
            )

    async def _reply_to(self, sock: zmq.asyncio.Socket, msg_id: str, codec: Codec) -> Message:
        while True:
            frames: list[bytes] = await sock.recv_multipart()
            self.stats.messages_in += 1
            self.stats.bytes_in += frames_size(frames)
            try:
                reply = codec.decode(frames, self.replay_guard)
            except WireError:
                self.stats.rejected += 1
                continue
            if reply.parent_header.get("msg_id") == msg_id:
                return reply

    def close(self) -> None:
        self._discard()
