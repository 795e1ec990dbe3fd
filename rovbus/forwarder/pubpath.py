"""The pub path across a boundary: XSUB inside, XPUB outside, libzmq's proxy between.

::

    inner node PUBs ──┐
    inner forwarders ─┼─> XSUB ══ zmq_proxy_steerable (own thread) ══ XPUB ──> outer SUBs
    LVC XPUB (inproc)─┘       <── subscriptions travel upstream ───

Every message crosses in libzmq's proxy loop, which runs with the GIL released: Python
is not on the per-message path. Subscriptions travel the other way, so an inner node
sends only what someone outside subscribed to, and the XPUB sends each subscriber only
its own topics: an unsubscribed topic never crosses the tether.

The proxy is steerable through an inproc PAIR: ``PAUSE``, ``RESUME``, ``TERMINATE`` and
``STATISTICS``, which returns libzmq's own counters (message parts and bytes, in and
out, per side) kept inside the proxy loop at no cost to it.

The outer XPUB is ``XPUB_VERBOSER``: every subscribe and unsubscribe goes upstream, not
only the first and last per topic, so the last-value cache (which sits upstream, see
:mod:`rovbus.forwarder.lvc`) sees each late joiner, and the XSUB's reference counts stay
balanced (an unsubscription is never lost, so a topic stops crossing once its last
subscriber is gone).

What the outside sends the XPUB (subscriptions) is bounded: a prefix longer than
``[system] max_prefix`` drops that subscriber's connection (``ZMQ_MAXMSGSIZE``), and the
XPUB asks the forwarder's gate about each new connection (``ZAP_DOMAIN``), both set by
:func:`rovbus.transport.subguard.configure_xpub`. Their number is bounded by a
:class:`~rovbus.transport.subguard.ProxyGuard` in the daemon, which calls :meth:`PubPath.reset`
to free them: the proxy stops, both sockets close (so the inner publishers free what the
XSUB held too), new ones bind and connect, the proxy starts again. The XSUB, which reads
the inner group's daemons, is not bounded: a node's large message must not cut the pub
path for every subscriber outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from rovbus.config.reach import PubSource
from rovbus.config.subscriptions import SubscriptionCaps
from rovbus.errors import TransportError
from rovbus.forwarder.topology import connect_sources
from rovbus.transport.curve import SocketSetup
from rovbus.transport.sockets import SocketOptions, bind
from rovbus.transport.subguard import bind_again, configure_xpub

__all__ = ["ProxyStats", "PubPath"]

#: The high-water marks of the proxy's sockets: a burst or a slow tether costs drops at
#: the XPUB (per subscriber), never unbounded memory.
PROXY_OPTIONS = SocketOptions(linger_ms=0, sndhwm=50_000, rcvhwm=50_000)


@dataclass(frozen=True, slots=True)
class ProxyStats:
    """libzmq's proxy counters. They count message *parts* (frames), not envelopes."""

    inner_parts_in: int = 0  # data parts received from the inner group
    inner_bytes_in: int = 0
    inner_parts_out: int = 0  # subscription messages sent upstream
    inner_bytes_out: int = 0
    outer_parts_in: int = 0  # subscription messages from outside
    outer_bytes_in: int = 0
    outer_parts_out: int = 0  # data parts handed to the XPUB
    outer_bytes_out: int = 0

    @classmethod
    def from_frames(cls, frames: list[bytes]) -> ProxyStats:
        values = [int.from_bytes(f, "little") for f in frames]
        if len(values) != 8:
            raise TransportError(f"proxy STATISTICS returned {len(values)} frames, expected 8")
        return cls(*values)

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class PubPath:
    """Owns the XSUB, the XPUB and the proxy thread; steers it from the event loop."""

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        name: str,
        outer_endpoint: str,
        caps: SubscriptionCaps,
        *,
        outer_setup: SocketSetup | None = None,
    ) -> None:
        self.name = name
        self.outer_endpoint = outer_endpoint
        self._ctx = ctx
        self._caps = caps
        self._outer_setup = outer_setup
        self._inner: tuple[tuple[str, ...], tuple[PubSource, ...], SocketSetup | None] = (
            (),
            (),
            None,
        )
        self.xsub, self.xpub = self._new_sockets()
        control = f"inproc://rovbus-{name}-proxy-control-{id(self):x}"
        self._control_proxy: zmq.Socket[Any] = zmq.Socket(ctx, zmq.PAIR)
        self._control: zmq.asyncio.Socket = ctx.socket(zmq.PAIR)
        self._lock = asyncio.Lock()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.paused = False
        try:
            self._control_proxy.setsockopt(zmq.LINGER, 0)
            self._control.setsockopt(zmq.LINGER, 0)
            self._control_proxy.bind(control)
            self._control.connect(control)
            bind(self.xpub, outer_endpoint, "pub (XPUB)")
        except BaseException:
            self.close()
            raise

    def _new_sockets(self) -> tuple[zmq.Socket[Any], zmq.Socket[Any]]:
        """An XSUB and an XPUB with their options; the XPUB is not bound yet."""
        xsub: zmq.Socket[Any] = zmq.Socket(self._ctx, zmq.XSUB)
        xpub: zmq.Socket[Any] = zmq.Socket(self._ctx, zmq.XPUB)
        try:
            PROXY_OPTIONS.apply(xsub)
            PROXY_OPTIONS.apply(xpub)
            # a subscription longer than max_prefix drops its subscriber here: it would
            # otherwise go upstream and cost every inner publisher as much
            configure_xpub(xpub, self._caps, curve=self._outer_setup is not None)
            if self._outer_setup is not None:
                self._outer_setup(xpub)
        except BaseException:
            xsub.close(linger=0)
            xpub.close(linger=0)
            raise
        return xsub, xpub

    def connect_inner(
        self, local: Iterable[str], sources: Iterable[PubSource], setup: SocketSetup | None
    ) -> None:
        """Connect the XSUB to ``local`` endpoints (the last-value cache) and the inner
        PUBs (``setup``: CURVE keys for inner forwarders); a reset connects them again."""
        self._inner = (tuple(local), tuple(sources), setup)
        for endpoint in self._inner[0]:
            self.xsub.connect(endpoint)
        connect_sources(self.xsub, self._inner[1], setup, "inner sub (XSUB)")

    def topics_count(self) -> int:
        """libzmq's count of distinct prefixes in the XPUB's trie (``ZMQ_TOPICS_COUNT``).

        Read from the event loop while the proxy thread owns the socket: libzmq keeps
        this count in an atomic for that, and the read touches nothing else. libzmq
        4.3.5 does not lower it when a subscriber leaves; a reset starts it at 0."""
        try:
            count = self.xpub.getsockopt(zmq.TOPICS_COUNT)
        except zmq.ZMQError:  # closed: being reset
            return 0
        return int(count)

    async def close_sockets(self) -> None:
        """Stop the proxy and close the XSUB and XPUB: libzmq frees every subscription
        they held, and each inner publisher frees what the XSUB held there."""
        thread = self._thread
        await self.stop()
        if thread is not None and thread.is_alive():
            self._thread = thread
            raise TransportError(f"forwarder {self.name}: the proxy thread did not stop")
        for sock in (self.xsub, self.xpub):
            sock.close(linger=0)

    async def reopen(self) -> None:
        """New sockets after :meth:`close_sockets`: bind (the closed listener frees the
        port a moment later), connect as before, start the proxy (paused if it was)."""
        self.xsub, self.xpub = self._new_sockets()
        await bind_again(self.xpub, self.outer_endpoint, f"forwarder {self.name} pub")
        local, sources, setup = self._inner
        self.connect_inner(local, sources, setup)
        self.start()
        if self.paused:
            await self.pause()

    def start(self) -> None:
        """Start the proxy thread; after this, only the thread touches XSUB and XPUB."""
        self._thread = threading.Thread(
            target=self._run, name=f"rovbus-proxy-{self.name}", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        try:
            zmq.proxy_steerable(self.xsub, self.xpub, None, self._control_proxy)
        except zmq.ContextTerminated:
            pass
        except BaseException as exc:  # reported through .error and the daemon's stats
            self.error = exc

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    async def _command(self, command: bytes) -> list[bytes]:
        """Send a command; return its reply (libzmq 4.3.5 answers every command; older
        versions answer only STATISTICS, so a missing reply to the others is fine)."""
        async with self._lock:
            # a reply that came late to an earlier command must not be taken for this one
            while await self._control.poll(0):
                await self._control.recv_multipart()
            await self._control.send(command)
            wait_ms = 2000 if command == b"STATISTICS" else 100
            if not await self._control.poll(wait_ms):
                if command == b"STATISTICS":
                    raise TransportError(f"forwarder {self.name}: the proxy does not answer")
                return []
            frames: list[bytes] = await self._control.recv_multipart()
            return frames

    async def statistics(self) -> ProxyStats:
        if not self.running:
            return ProxyStats()
        return ProxyStats.from_frames(await self._command(b"STATISTICS"))

    async def pause(self) -> None:
        await self._command(b"PAUSE")
        self.paused = True

    async def resume(self) -> None:
        await self._command(b"RESUME")
        self.paused = False

    async def stop(self, timeout: float = 2.0) -> None:
        """TERMINATE the proxy and wait for its thread (bounded)."""
        thread = self._thread
        if thread is None:
            return
        if thread.is_alive():
            with contextlib.suppress(zmq.ZMQError, TransportError):
                await self._command(b"TERMINATE")
            await asyncio.to_thread(thread.join, timeout)
        self._thread = None

    def close(self) -> None:
        """Close every socket (the proxy must have stopped, or never started)."""
        if self.running:
            raise RuntimeError("PubPath.close() while the proxy runs; await stop() first")
        for sock in (self.xsub, self.xpub, self._control_proxy, self._control):
            if not sock.closed:
                sock.close(linger=0)
