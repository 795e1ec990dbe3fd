"""How every daemon takes messages off a socket: ``Intake.next``, and nothing else; and
``wait_readable``, the one way rovbus waits for a message on one socket or several (the
intake's wait, a client's subscription across its pub sources).

Every receive loop of the daemons that bind ZeroMQ sockets (the node: shell, control,
stdin, hb; the forwarder: request, control, the replies from inside, the last-value
cache) reads through an ``Intake``, for two promises:

- **Stopping loses nothing.** A message is only taken off the queue by a receive that
  cannot be suspended (``read_now``, non-blocking); the wait for one is a poll, which
  takes nothing. ``stop`` ends every ``next`` at once, and cancelling one loses nothing
  either (cancelling an awaited receive can).
- **A peer cannot end the loop.** What a peer sends can make ZeroMQ fail a receive: a
  socket that discards a malformed message inside ``recv`` (a REP or REQ socket given a
  message without the empty delimiter frame) has said it was readable and then has
  nothing to give, so pyzmq's receive raises ``zmq.Again``. ``next`` counts that in the
  counters the caller passes (``rejected``; once per wake-up, as one receive discards
  every malformed message queued, unseen: why the node's hb is a ROUTER), logs it at a
  limited rate (``rovbus.ratelimit``) and waits for the next message. Errors of the
  process's own making (the socket closed, the context terminated, a receive on the
  wrong socket type) still end the loop: they are bugs or shutdown, not input.

What a socket hands over intact but malformed (no delimiter on the heartbeat echo, a bad
envelope on a request channel) is for the loop to judge, count and drop: see
``transport/heartbeat.py`` and ``transport/server.py``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import zmq
import zmq.asyncio

from rovbus.ratelimit import RateLimiter

__all__ = ["Counters", "Intake", "read_now", "read_now_with_user_id", "wait_readable"]

_log = logging.getLogger(__name__)

T = TypeVar("T")


class Counters(Protocol):
    """Where a loop counts what its peers sent that had to be dropped (``SocketStats``,
    the forwarder's ``RouterStats``, the last-value cache)."""

    rejected: int


async def read_now(sock: zmq.asyncio.Socket) -> list[bytes] | None:
    """The next message already queued on ``sock``, or ``None``; never waits (pyzmq
    completes a non-blocking receive at once, so there is no suspension to cancel)."""
    try:
        frames: list[bytes] = await sock.recv_multipart(flags=zmq.NOBLOCK)
    except zmq.Again:
        return None
    return frames


async def read_now_with_user_id(sock: zmq.asyncio.Socket) -> tuple[list[bytes], str] | None:
    """As :func:`read_now`, with the ``User-Id`` ZAP gave the peer's connection (``""``
    when there is none: no ZAP handler was asked)."""
    try:
        frames: list[zmq.Frame] = await sock.recv_multipart(flags=zmq.NOBLOCK, copy=False)
    except zmq.Again:
        return None
    try:
        user_id = frames[0].get("User-Id") if frames else ""
    except zmq.ZMQError:  # the property does not exist on this connection
        user_id = ""
    return [frame.bytes for frame in frames], str(user_id)


async def wait_readable(
    socks: Sequence[zmq.asyncio.Socket], stop: asyncio.Future[None] | None = None
) -> list[zmq.asyncio.Socket]:
    """Wait until a message can be read from one of ``socks``, or ``stop`` is done; return
    those readable (none: stopped). A poll (``zmq.asyncio.Poller``), which takes nothing
    off a queue: cancelling the wait loses no message, as cancelling an awaited receive
    can. Read them with :func:`read_now`."""
    poller = zmq.asyncio.Poller()
    for sock in socks:
        poller.register(sock, zmq.POLLIN)
    polling = asyncio.ensure_future(poller.poll())
    try:
        await asyncio.wait(
            (polling,) if stop is None else (polling, stop), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        polling.cancel()
    if polling.cancelled() or not polling.done():
        return []
    return [sock for sock, events in polling.result() if events & zmq.POLLIN]


class Intake:
    """Receiving from sockets until ``stop``, without losing a message to the stop, and
    without ending on what a peer sent (module doc)."""

    def __init__(self, logger: logging.Logger | None = None, log_interval_s: float = 10.0) -> None:
        self.logger = logger or _log
        self.stopped = False
        self._stop: asyncio.Future[None] | None = None
        self._limit = RateLimiter(log_interval_s)

    def _future(self) -> asyncio.Future[None]:
        if self._stop is None:
            self._stop = asyncio.get_running_loop().create_future()
            if self.stopped:
                self._stop.set_result(None)
        return self._stop

    def stop(self) -> None:
        """Every ``next`` returns ``None`` from now on (those waiting, at once)."""
        self.stopped = True
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(None)

    async def next(
        self, sock: zmq.asyncio.Socket, counters: Counters, what: str
    ) -> list[bytes] | None:
        """The next message of ``sock`` (called ``what`` in the log); ``None`` once stopped.
        A message the socket discarded after saying it was readable is counted in
        ``counters.rejected`` and logged; the wait goes on."""
        return await self._next(sock, counters, what, read_now)

    async def next_with_user_id(
        self, sock: zmq.asyncio.Socket, counters: Counters, what: str
    ) -> tuple[list[bytes], str] | None:
        """As :meth:`next`, with the ``User-Id`` of the peer's connection (ZAP's)."""
        return await self._next(sock, counters, what, read_now_with_user_id)

    async def _next(
        self,
        sock: zmq.asyncio.Socket,
        counters: Counters,
        what: str,
        read: Callable[[zmq.asyncio.Socket], Awaitable[T | None]],
    ) -> T | None:
        stop = self._future()
        readable = False
        while not stop.done():
            got = await read(sock)
            if got is not None:
                return got
            if readable:  # it said a message was there, then discarded it
                self.dropped(counters, what, "a malformed message, discarded by the socket")
            readable = bool(await wait_readable((sock,), stop))
        return None

    def dropped(self, counters: Counters, what: str, why: str) -> None:
        """Count one message a peer sent that ``what`` dropped, and log it (rate-limited)."""
        counters.rejected += 1
        self._limit.log(self.logger, logging.WARNING, f"{what}:{why}", "%s: dropped %s", what, why)
