"""A subscription by topic prefixes across every pub source of a client.

One SUB socket per kind of source: the client's own group's node PUB endpoints share one;
each forwarder's outer XPUB gets its own (it may need CURVE keys, and an empty prefix must
not cross a tether: it is narrowed to ``<node>/`` for each node behind the forwarder).
Besides the caller's prefixes, every socket subscribes to ``<node>/hb`` of each node it
reaches, so :meth:`Subscription.ready` can tell when the subscription has joined (a
heartbeat of every node arrived, or the wait ran out) and the client's node table stays
current. Heartbeats the caller did not ask for are not yielded.

Messages that fail to decode or verify are counted (``rejected``) and skipped. Messages a
publisher sent on a subscribed topic that never arrived (gaps in the header's per-topic
``seq``) are counted too: ``stats.missed``, per topic ``missed_topics()``.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import zmq.asyncio

from rovbus.closing import AsyncClosing
from rovbus.errors import ConfigError
from rovbus.transport.channel import Rejected
from rovbus.transport.curve import SocketSetup
from rovbus.transport.intake import read_now, wait_readable
from rovbus.transport.stats import SocketStats, frames_size
from rovbus.transport.subscriber import MAX_TRACKED, Subscriber
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message

if TYPE_CHECKING:
    from rovbus.client.routes import PubSource, Routes

__all__ = ["Received", "Subscription"]


@dataclass(frozen=True, slots=True)
class Received:
    """A message with its raw envelope frames and its receive time (UTC epoch seconds)."""

    message: Message
    frames: list[bytes]
    time: float

    @property
    def size(self) -> int:
        """Bytes on the wire (every frame of the envelope)."""
        return frames_size(self.frames)


def _socket_prefixes(source: PubSource, prefixes: Sequence[str]) -> list[str]:
    """What one socket subscribes to, and each node's heartbeat (for ``ready``).

    On a forwarder's outer side every prefix is narrowed to the nodes and forwarders whose
    messages come from it: ``""`` never crosses a tether (it becomes ``<node>/`` per node),
    nor does a prefix of a node reached another way.
    """
    names = (*source.nodes, *source.forwarders) if source.via is not None else ()
    wanted: list[str] = []
    for prefix in prefixes:
        if not names:
            wanted.append(prefix)
            continue
        for name in source.nodes if prefix == "" else names:
            level = f"{name}/"
            if level.startswith(prefix):
                wanted.append(level)
            elif prefix.startswith(level):
                wanted.append(prefix)
    wanted += [f"{node}/hb" for node in source.nodes]
    return list(dict.fromkeys(wanted))


def _merge_missed(into: dict[str, int], sub: Subscriber) -> None:
    for topic, n in sub.missed_topics.items():
        name = topic.decode("utf-8", "replace")
        if name in into or len(into) < MAX_TRACKED:
            into[name] = into.get(name, 0) + n


class Subscription(AsyncClosing):
    """An async iterator of the messages whose topic starts with one of ``prefixes``.

    Use it as ``async with client.subscribe([...]) as sub: async for msg in sub: ...``;
    :meth:`received` yields :class:`Received` (frames and receive time) instead.
    """

    def __init__(
        self,
        context: zmq.asyncio.Context,
        routes: Routes,
        codec: Codec,
        prefixes: Iterable[str],
        *,
        curve_setup: SocketSetup | None = None,
        heartbeat_interval: float = 1.0,
        on_heartbeat: Callable[[Message], None] | None = None,
        on_close: Callable[[Subscription], None] | None = None,
    ) -> None:
        """Sockets on ``context`` to every pub source of ``routes`` (``curve_setup`` for
        those through a forwarder), decoding with ``codec``. Every heartbeat received
        goes to ``on_heartbeat`` (a client's node table); ``on_close`` is called once
        it is closed. Made by :meth:`Client.subscribe`, which passes its own."""
        self.routes = routes
        self.heartbeat_interval = heartbeat_interval
        self._on_heartbeat = on_heartbeat
        self._on_close = on_close
        self.prefixes = tuple(dict.fromkeys(prefixes))
        self._match = tuple(p.encode() for p in self.prefixes)
        self.subscribers: list[Subscriber] = []
        self._buffer: deque[Received] = deque()
        self._turn = 0  # the socket read first by the next receive
        self.rejected = 0
        self.closed = False
        # the counts of sockets already closed, so they outlive close()
        self._closed_stats = SocketStats()
        self._closed_missed: dict[str, int] = {}
        if not routes.sources:
            where = routes.start or "here"
            raise ConfigError(
                routes.source,
                [
                    f"nothing to subscribe to from {where}: no nodes, no forwarder "
                    "(try --group or --host)"
                ],
            )
        groups: dict[str | None, list[PubSource]] = {}
        for source in routes.sources:
            groups.setdefault(source.via, []).append(source)
        try:
            for via, sources in groups.items():
                wanted: list[str] = []
                for source in sources:
                    wanted += _socket_prefixes(source, self.prefixes)
                setup = curve_setup if via is not None and sources[0].secure else None
                self.subscribers.append(
                    Subscriber(
                        context,
                        [s.endpoint for s in sources],
                        codec,
                        list(dict.fromkeys(wanted)),
                        setup=setup,
                    )
                )
        except BaseException:
            self.close()
            raise

    # -- receiving ----------------------------------------------------------------------

    def _wanted(self, topic: bytes) -> bool:
        return topic.startswith(self._match) if self._match else False

    async def _recv_raw(self) -> tuple[Subscriber, list[bytes]]:
        """The next message of any socket, taking them in turn so that a busy source
        cannot starve the others; nothing is lost to a timeout or a cancel."""
        while True:
            subscribers = self.subscribers
            if not subscribers:
                raise RuntimeError("the subscription is closed")
            n = len(subscribers)
            for k in range(n):
                sub = subscribers[(self._turn + k) % n]
                frames = await read_now(sub.channel.socket)
                if frames is not None:
                    self._turn = (self._turn + k + 1) % n
                    return sub, frames
            await wait_readable([s.channel.socket for s in subscribers])

    async def _next_any(self) -> Received | None:
        """The next good message (any topic), or None for one that was rejected."""
        sub, frames = await self._recv_raw()
        got = sub.decode(frames)
        if isinstance(got, Rejected):
            self.rejected += 1
            return None
        if got.msg_type == "heartbeat" and self._on_heartbeat is not None:
            self._on_heartbeat(got)
        return Received(got, frames, time.time())

    async def next_received(self) -> Received:
        """The next message matching the prefixes, with its frames and receive time."""
        if self._buffer:
            return self._buffer.popleft()
        while True:
            got = await self._next_any()
            if got is not None and self._wanted(
                got.message.identities[0] if got.message.identities else b""
            ):
                return got

    async def recv(self) -> Message:
        """The next message matching the prefixes."""
        return (await self.next_received()).message

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Message:
        """The next message; the iteration ends when the subscription is closed, also
        while it waits."""
        if self.closed:
            raise StopAsyncIteration
        try:
            return await self.recv()
        except RuntimeError:
            if self.closed:
                raise StopAsyncIteration from None
            raise

    async def received(self) -> AsyncIterator[Received]:
        """Every matching message as :class:`Received`, until closed (also while waiting)."""
        while not self.closed:
            try:
                got = await self.next_received()
            except RuntimeError:
                if self.closed:
                    return
                raise
            yield got

    # -- counters -----------------------------------------------------------------------

    @property
    def stats(self) -> SocketStats:
        """This subscription's counters, summed over its sockets (a copy; still there after
        ``close``): ``messages_in``, ``bytes_in``, ``rejected`` and ``missed``, the messages
        publishers sent on subscribed topics that never arrived (from per-topic sequence
        gaps; a gap counts once a later message of its topic arrives). They count all the
        sockets received, the ``<node>/hb`` heartbeats subscribed for :meth:`ready`
        included; :meth:`missed_topics` tells the topics apart."""
        total = SocketStats()
        total.add(self._closed_stats)
        for sub in self.subscribers:
            total.add(sub.stats)
        return total

    def missed_topics(self) -> dict[str, int]:
        """Messages missed per topic (the topics with gaps; at most 65,536 topics are kept,
        the rest still count in ``stats.missed``)."""
        missed = dict(self._closed_missed)
        for sub in self.subscribers:
            _merge_missed(missed, sub)
        return missed

    # -- joining ------------------------------------------------------------------------

    async def ready(self, timeout: float | None = None) -> set[str]:
        """Wait until a heartbeat of every reachable node arrived (proof the subscription
        reached its publisher), at most ``timeout`` seconds (default: two heartbeat
        intervals and a half); returns the nodes heard. Messages that arrive meanwhile are
        kept for the iterator. Without known nodes (endpoints given by hand) it waits a
        fixed 0.3 s, ZeroMQ's usual join time on loopback.
        """
        expected = {n for s in self.routes.sources for n in s.nodes}
        if timeout is None:
            timeout = 2.5 * self.heartbeat_interval
        heard: set[str] = set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout if expected else min(timeout, 0.3))
        while not expected or heard < expected:
            left = deadline - loop.time()
            if left <= 0:
                break
            try:
                got = await asyncio.wait_for(self._next_any(), left)
            except TimeoutError:
                break
            if got is None:
                continue
            msg = got.message
            if msg.msg_type == "heartbeat" and isinstance(msg.content.get("node"), str):
                heard.add(msg.content["node"])
            if self._wanted(msg.identities[0] if msg.identities else b""):
                self._buffer.append(got)
        return heard

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Close every socket (idempotent)."""
        self.closed = True
        for sub in self.subscribers:
            self._closed_stats.add(sub.stats)
            _merge_missed(self._closed_missed, sub)
            sub.close(0)
        self.subscribers = []
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            on_close(self)

    async def aclose(self) -> None:
        self.close()
        await asyncio.sleep(0)  # a receive waiting on its sockets ends now
