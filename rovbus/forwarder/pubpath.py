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

What the outside sends the XPUB (subscriptions) is bounded by ``max_message_size``
(``ZMQ_MAXMSGSIZE``): an oversized one drops that subscriber's connection. The XSUB,
which reads the inner group's daemons, is not bounded: a node's large message must not
cut the pub path for every subscriber outside.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import zmq
import zmq.asyncio

from rovbus.config.reach import PubSource
from rovbus.errors import TransportError
from rovbus.forwarder.topology import connect_sources
from rovbus.transport.curve import SocketSetup
from rovbus.transport.sockets import SocketOptions, bind

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
        *,
        outer_setup: SocketSetup | None = None,
        max_message_size: int = -1,
    ) -> None:
        self.name = name
        self.outer_endpoint = outer_endpoint
        self._ctx = ctx
        self.xsub: zmq.Socket[Any] = zmq.Socket(ctx, zmq.XSUB)
        self.xpub: zmq.Socket[Any] = zmq.Socket(ctx, zmq.XPUB)
        control = f"inproc://rovbus-{name}-proxy-control-{id(self):x}"
        self._control_proxy: zmq.Socket[Any] = zmq.Socket(ctx, zmq.PAIR)
        self._control: zmq.asyncio.Socket = ctx.socket(zmq.PAIR)
        self._lock = asyncio.Lock()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.paused = False
        try:
            PROXY_OPTIONS.apply(self.xsub)
            # what the outside sends the XPUB (subscriptions) is bounded, as at a node's
            # PUB: an oversized one would otherwise go upstream to every inner PUB, which
            # would drop the XSUB's connection for it, again after every reconnect
            replace(PROXY_OPTIONS, maxmsgsize=max_message_size).apply(self.xpub)
            self.xpub.setsockopt(zmq.XPUB_VERBOSER, 1)
            if outer_setup is not None:
                outer_setup(self.xpub)
            self._control_proxy.setsockopt(zmq.LINGER, 0)
            self._control.setsockopt(zmq.LINGER, 0)
            self._control_proxy.bind(control)
            self._control.connect(control)
            bind(self.xpub, outer_endpoint, "pub (XPUB)")
        except BaseException:
            self.close()
            raise

    def connect_inner(self, sources: Iterable[PubSource], setup: SocketSetup | None) -> None:
        """Connect the XSUB to the inner PUBs (``setup``: CURVE keys for inner forwarders)."""
        connect_sources(self.xsub, sources, setup, "inner sub (XSUB)")

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
