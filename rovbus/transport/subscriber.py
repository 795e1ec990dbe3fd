"""Subscribing by topic prefix to one or more PUB (or XPUB) endpoints.

ZeroMQ filters by byte prefix on the first frame, which is the topic. Messages that fail
to decode or verify are counted and skipped: a subscriber only ever yields good messages.

Loss is counted here, because only here can it be: a PUB socket drops silently at a
peer's high-water mark. A rovbus publisher numbers its messages per topic (header ``seq``,
see :mod:`rovbus.transport.publisher`), and the subscriber keeps the last number seen per
(header ``session``, topic):

- the first message of a (session, topic) sets the baseline and counts nothing;
- a jump (seq > last + 1) adds ``seq - last - 1`` to ``stats.missed`` (and to
  ``missed_topics``);
- a seq at or below the last counts nothing: 1 is the publisher starting its count again
  (the baseline becomes 1), anything else is an old message replayed (a forwarder's
  last-value cache) and is ignored;
- a message without an integer ``seq`` (a Jupyter kernel, an older rovbus) is not tracked.

A drop is counted once a later message of its topic arrives: the last messages before a
publisher falls silent are not. Both tables are bounded (``MAX_TRACKED`` entries): the
(session, topic) table is cleared when full (every pair then starts a new baseline), and
per-topic counts stop taking new topics (their gaps still count in ``stats.missed``).
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

#: (session, topic) pairs whose last seq a subscriber keeps; also the most topics
#: ``missed_topics`` holds
MAX_TRACKED = 65_536


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
        #: (header session, topic) -> the last seq seen
        self.last_seq: dict[tuple[str, bytes], int] = {}
        #: topic -> messages missed on it (the gaps that make up ``stats.missed``)
        self.missed_topics: dict[bytes, int] = {}

    @property
    def stats(self) -> SocketStats:
        return self.channel.stats

    async def recv(self) -> Message:
        """The next message that decodes and verifies."""
        while True:
            frames: list[bytes] = await self.channel.socket.recv_multipart()
            got = self.decode(frames)
            if isinstance(got, Message):
                return got

    def decode(self, frames: list[bytes]) -> Message | Rejected:
        """Decode received ``frames`` (counted) and count any sequence gap they reveal."""
        got = self.channel.decode(frames)
        if type(got) is Message:
            header = got.header
            seq = header.get("seq")
            if type(seq) is int:
                ids = got.identities
                key = (header["session"], ids[0] if ids else b"")
                last_seq = self.last_seq
                if last_seq.get(key) == seq - 1:  # the usual case: the next one
                    last_seq[key] = seq
                else:
                    self.track(key[0], key[1], seq)
        return got

    def track(self, session: str, topic: bytes, seq: int) -> None:
        """Note that message ``seq`` of ``topic`` from ``session`` arrived (module doc)."""
        key = (session, topic)
        table = self.last_seq
        last = table.get(key)
        if last is None:
            if len(table) >= MAX_TRACKED:
                table.clear()
            table[key] = seq
        elif seq > last:
            table[key] = seq
            if seq != last + 1:
                missed = seq - last - 1
                self.channel.stats.missed += missed
                per_topic = self.missed_topics
                if topic in per_topic:
                    per_topic[topic] += missed
                elif len(per_topic) < MAX_TRACKED:
                    per_topic[topic] = missed
        elif seq == 1:
            table[key] = 1

    def close(self, linger_ms: int | None = 0) -> None:
        self.channel.close(linger_ms)
