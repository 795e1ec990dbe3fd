"""The last-value cache: a late joiner outside gets every node's latest hb and status at once.

The zguide's LVC sits *in* the proxy loop; here the proxy is libzmq's, so the cache sits
beside it, upstream, as one more publisher the XSUB is connected to::

    node PUBs ─────────────> XSUB ══ proxy ══ XPUB ──> outer SUBs
    LVC XPUB (inproc) ─────>  ^                  |
        ^   <── "\\x01prefix" ─┘ <── subscribe ──┘
        │
    cache SUB <── <node>/hb, <node>/status of every node behind (heartbeat rate)

- The XSUB forwards every subscription it gets from outside to *all* its publishers, the
  LVC's inproc XPUB among them, and the outer XPUB is ``XPUB_VERBOSER``, so the cache
  sees each subscribe of each subscriber, late joiners included.
- On ``\\x01prefix`` it sends the cached envelopes whose topic starts with ``prefix`` on
  its XPUB; they enter the proxy like any node's message and leave through the outer
  XPUB to the subscribers of that prefix.
- The cache is filled by its own SUB socket, subscribed only to ``<node>/hb`` and
  ``<node>/status`` of the nodes behind (and ``<forwarder>/hb`` of inner forwarders):
  heartbeat-rate traffic, never the CAN stream. Python stays off the per-message path.

What is replayed is the original envelope, byte for byte, as its node signed it: the
cache only stores what verified with the system key, and re-signs nothing. It also keeps
each node's session from its latest heartbeat: the start whose key the request router
verifies that node's requests with. Per node it
keeps the latest ``heartbeat``, the latest ``status`` (execution state) and the latest
``bus_status`` per bus. A heartbeat older than 1.5 of its node's intervals is not
replayed (the node is late; replaying would show it alive), nor, with ``max_age``, any
entry older than that (the receiver would reject it). The entries of one topic go newest
first: ``status`` and each ``bus_status`` share ``<node>/status`` and its header ``seq``
numbers, so the newest sets a new subscriber's baseline and the older ones, below it, do
not look like a gap (a loss) to it.

An XPUB cannot address one subscriber, so, as in the zguide, the entries go to every
subscriber of the prefix: a subscriber already there sees a duplicate (with signing on,
its replay guard drops it and counts it). Subscriptions are rare, so this is cheap.

The forwarder's own heartbeat is published through the same XPUB (and cached), so it,
too, crosses only when someone outside subscribed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import zmq
import zmq.asyncio

from rovbus.config.reach import PubSource
from rovbus.errors import WireError
from rovbus.forwarder.topology import connect_sources, sync_twin
from rovbus.transport.curve import SocketSetup
from rovbus.transport.intake import Intake
from rovbus.transport.publisher import TopicSequence
from rovbus.transport.sendnow import send_now
from rovbus.transport.sockets import SocketOptions
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from rovbus.wire.serializers import Serializer

__all__ = ["LastValueCache"]

log = logging.getLogger(__name__)

CACHED_TYPES = frozenset({"heartbeat", "status", "bus_status", "helm_status"})
LVC_OPTIONS = SocketOptions(linger_ms=0, sndhwm=10_000, rcvhwm=10_000)
MAX_ENTRIES = 4096
#: subscription events read in one go before the loop gets a turn
BATCH = 1024
#: the longest a subscription event waits to be read (ZMQ_FD is edge-triggered, and the
#: sends of the cache's twin socket can take the wake-up)
WAKE_MS = 250


class LastValueCache:
    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        name: str,
        codec: Codec,
        serializer: Serializer,
        *,
        max_age: float | None = None,
    ) -> None:
        self.name = name
        self.codec = codec
        #: the signatures of what the cache took (its own, apart from the request path's)
        self.replay_guard = codec.new_replay_guard()
        self.serializer = serializer
        self._seqs = TopicSequence()  # the forwarder's own messages are numbered too
        self.max_age = max_age
        self.endpoint = f"inproc://rovbus-{name}-lvc-{id(self):x}"
        #: (topic, kind) -> (monotonic time received, replay limit in s or None, header
        #: seq or 0, frames)
        self.entries: dict[tuple[bytes, str], tuple[float, float | None, int, list[bytes]]] = {}
        #: node -> the session of its latest heartbeat: its current start, whose key
        #: requests for it are signed with (``RequestRouter``)
        self.sessions: dict[str, str] = {}
        #: distinct prefixes the XSUB passes upstream: the subscriptions in force outside
        #: (bounded by the forwarder's guard, which resets the pub path beyond its cap)
        self.prefixes: set[bytes] = set()
        #: called after each subscribe (the forwarder's guard checks its caps)
        self.on_subscribe: Callable[[], None] | None = None
        self._emptied = asyncio.Event()
        self.subscribes = 0
        self.unsubscribes = 0
        self.replayed = 0  # envelopes sent to late joiners
        self.cached = 0  # envelopes stored
        self.rejected = 0  # hb/status that did not verify (or that a socket discarded)
        self.dropped = 0  # sends that hit the high-water mark
        self._intake = Intake(log)  # never stopped: the forwarder cancels the loops
        self.xpub: zmq.asyncio.Socket = ctx.socket(zmq.XPUB)
        self.sub: zmq.asyncio.Socket = ctx.socket(zmq.SUB)
        try:
            LVC_OPTIONS.apply(self.xpub)
            LVC_OPTIONS.apply(self.sub)
            self.xpub.setsockopt(zmq.XPUB_VERBOSER, 1)
            self.xpub.bind(self.endpoint)
            self._xpub_now = sync_twin(self.xpub)
        except BaseException:
            self.close()
            raise

    def watch(
        self, topics: Iterable[str], sources: Iterable[PubSource], setup: SocketSetup | None
    ) -> None:
        """Subscribe the cache to ``topics`` on every source (``setup``: CURVE client keys,
        for the sources that are other forwarders' outer sides)."""
        for topic in topics:
            self.sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        connect_sources(self.sub, sources, setup, "cache sub")

    # -- filling ------------------------------------------------------------------------

    async def collect_forever(self) -> None:
        while (frames := await self._intake.next(self.sub, self, "cache sub")) is not None:
            self.store(frames)

    def store(self, frames: list[bytes]) -> None:
        """Keep ``frames`` if they are a verified heartbeat or status of a node behind."""
        try:
            message = self.codec.decode(frames, self.replay_guard)
        except WireError:
            self.rejected += 1
            return
        self._keep(message, frames)

    def _keep(self, message: Message, frames: list[bytes]) -> None:
        kind = message.msg_type
        if kind not in CACHED_TYPES or not message.identities:
            return
        limit: float | None = None
        if kind == "heartbeat":
            interval = message.content.get("interval")
            if isinstance(interval, int | float) and interval > 0:
                limit = 1.5 * interval
        elif kind == "bus_status":
            kind = f"bus_status:{message.content.get('bus')}"
        key = (message.identities[0], kind)
        if key not in self.entries and len(self.entries) >= MAX_ENTRIES:
            return
        seq = message.header.get("seq")
        self.entries[key] = (time.monotonic(), limit, seq if type(seq) is int else 0, frames)
        self.cached += 1
        node = message.content.get("node")
        if kind != "heartbeat" or not isinstance(node, str):
            return
        if node in self.sessions or len(self.sessions) < MAX_ENTRIES:
            self.sessions[node] = message.header["session"]

    # -- publishing (the forwarder's own messages) ------------------------------------

    def publish(self, topic: str, msg_type: str, content: dict[str, Any]) -> None:
        """Publish one of the forwarder's own messages outward, and cache it."""
        message = self.codec.message(
            msg_type,
            content,
            identities=(topic.encode(),),
            serializer=self.serializer,
            seq=self._seqs.next(topic),
        )
        frames = self.codec.encode(message)
        self._keep(message, frames)
        self._send(frames)

    def _send(self, frames: list[bytes]) -> bool:
        if send_now(self._xpub_now, frames):
            return True
        self.dropped += 1
        return False

    # -- late joiners ---------------------------------------------------------------------

    async def serve_subscriptions(self) -> None:
        """Track subscriptions from outside; answer each subscribe from the cache."""
        while True:
            # with a bound: a send on the twin can take the wake-up meant for this wait
            await self.xpub.poll(WAKE_MS)
            self.take_subscriptions()
            await asyncio.sleep(0)  # a reset the guard asked for begins now

    def take_subscriptions(self, limit: int = BATCH) -> int:
        """Read up to ``limit`` subscription events waiting; returns how many."""
        taken = 0
        while taken < limit:
            try:
                frames = self._xpub_now.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            taken += 1
            event = frames[0]
            if not event:
                continue
            prefix = event[1:]
            if event[0] == 1:
                self.subscribes += 1
                self.prefixes.add(prefix)
                self.replay(prefix)
                if self.on_subscribe is not None:
                    self.on_subscribe()
            elif event[0] == 0:
                self.unsubscribes += 1
                self.prefixes.discard(prefix)
                if not self.prefixes:
                    self._emptied.set()
        return taken

    async def drained(self, timeout: float) -> None:
        """Once the XSUB is closed: wait (bounded) until its departure has emptied
        ``prefixes``, so that a new XSUB's subscriptions are not taken for the old one's
        unsubscribes; then forget whatever is left."""
        self._emptied.clear()
        if self.prefixes:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._emptied.wait(), timeout)
        self.prefixes.clear()

    def replay(self, prefix: bytes) -> int:
        """Send every fresh cached entry under ``prefix``; returns how many went."""
        now = time.monotonic()
        fresh: list[tuple[bytes, int, list[bytes]]] = []
        for (topic, _), (received, limit, seq, frames) in self.entries.items():
            if not topic.startswith(prefix):
                continue
            age = now - received
            if limit is not None and age > limit:
                continue
            if self.max_age is not None and age > self.max_age:
                continue
            fresh.append((topic, -seq, frames))
        fresh.sort(key=lambda entry: entry[:2])  # per topic, newest first (module doc)
        sent = 0
        for _, _, frames in fresh:
            if self._send(frames):
                sent += 1
        self.replayed += sent
        return sent

    def stats(self) -> dict[str, int]:
        return {
            "entries": len(self.entries),
            "cached": self.cached,
            "replayed": self.replayed,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "subscribes": self.subscribes,
            "unsubscribes": self.unsubscribes,
            "subscriptions": len(self.prefixes),
        }

    def topics(self) -> list[str]:
        return sorted({topic.decode("utf-8", "replace") for topic, _ in self.entries})

    def close(self) -> None:
        for sock in (self.xpub, self.sub):
            if not sock.closed:
                sock.close(linger=0)
