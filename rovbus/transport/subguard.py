"""Bounded subscriptions at a publisher: a cap on their number and on a prefix's length.

libzmq keeps every subscription an XPUB or PUB receives in a trie, about 48 bytes per
byte of prefix, for as long as the subscriber stays; nothing in libzmq bounds how many.
What bounds them here:

- **a prefix's length**: ``ZMQ_MAXMSGSIZE`` on the XPUB (:func:`configure_xpub`). A
  subscriber's only messages to a publisher are subscriptions, so one longer than
  ``max_prefix`` makes libzmq drop that subscriber's connection, and with it everything
  it held, before Python sees it.
- **their number**: a guard counts the subscriptions in force and, when a peer stays over
  its share or the total over the cap (for :data:`GRACE`; at once over twice the cap),
  refuses that peer's address (the busiest, for the total) at the gate
  (:mod:`rovbus.transport.gate`, a cooldown) and *resets* the socket: closes it, which
  frees its whole trie, and binds a new one on the same endpoint. Every subscriber
  reconnects by itself and subscribes again (they see a gap, which their sequence
  tracking counts as missed); the refused peer cannot reconnect until its cooldown ends.
- **memory back**: libzmq frees a departed subscriber's part of the trie; glibc keeps
  freed memory unless asked, so the guard calls ``malloc_trim`` after a large departure
  or a reset (:func:`trim_heap`).

Two guards, for the two vantage points:

:class:`SubscriptionGuard`, a node's publisher, reads the XPUB's notifications
(``XPUB_VERBOSER``: every subscribe and unsubscribe, and when a subscriber leaves, one
unsubscribe per prefix it held). A subscribe carries the peer's address and the number the
gate gave its connection, so the :class:`SubscriptionBook` mirrors libzmq's trie per
connection: what it counts is an upper bound of what the trie holds, and no peer can lower
it with unsubscribes for prefixes it does not hold or with duplicates.

:class:`ProxyGuard`, a forwarder's outer publisher, cannot read its notifications:
libzmq's proxy does, and passes them on without the peer's address. It counts the
distinct prefixes the forwarder passes upstream (exact, from the last-value cache, which
sees what the XSUB passes) and libzmq's own count of prefixes in the XPUB's trie
(``ZMQ_TOPICS_COUNT``, which peers cannot lower either; libzmq 4.3.5 does not lower it
when a subscriber leaves, only a reset does). Over the cap for :data:`GRACE`, or over
twice the cap, it refuses the peer address that has sent it the most bytes on its current
connections (the kernel's count: subscriptions are all a subscriber sends).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import zmq
import zmq.asyncio

from rovbus.config.subscriptions import SubscriptionCaps
from rovbus.ratelimit import RateLimiter
from rovbus.transport.gate import PUB_DOMAIN, PeerGate
from rovbus.transport.peerbytes import busiest_peer
from rovbus.transport.sockets import DEFAULT_OPTIONS, SocketOptions, bind
from rovbus.transport.stats import SubscriptionStats

__all__ = [
    "ProxyGuard",
    "SubscriptionBook",
    "SubscriptionGuard",
    "bind_again",
    "configure_xpub",
    "max_frame",
    "trim_heap",
]

log = logging.getLogger(__name__)

#: a subscription's frame beyond its prefix: ZMTP 3.1's SUBSCRIBE command name, and under
#: CURVE the MESSAGE command's name, nonce, box and flags (measured with libzmq 4.3.5)
SUBSCRIBE_OVERHEAD = len(b"\x09SUBSCRIBE")
CURVE_OVERHEAD = 33
#: the smallest frame limit a CURVE handshake passes (its INITIATE command is 276 bytes
#: from a SUB), with room for some metadata: under CURVE a prefix may reach 277 bytes
CURVE_HANDSHAKE = 320
#: notifications read in one go before the loop gets a turn
BATCH = 1024
#: subscriptions queued from one connection for the publisher to take in (``RCVHWM``).
#: libzmq takes in what is queued, into its trie, until the queue is empty, in whichever
#: call of the publisher's thread noticed it; with a long queue a subscriber streaming
#: subscriptions keeps it full and that one call lasts as long as the stream (measured:
#: 50,000 of 200 bytes held the thread 2-3 s, and 450 MB, before the guard saw any). With
#: two, the queue runs dry between two TCP reads and the call returns to the guard.
SUBSCRIPTION_HWM = 2
#: the longest a notification waits to be read: a send on the same socket can take the
#: wake-up that was meant for the guard (ZMQ_FD is edge-triggered)
WAKE_MS = 250
#: subscriptions freed at once that are worth a malloc_trim
TRIM_AFTER = 256
#: seconds during which a guard trims, every 0.25 s, after a reset or a large departure:
#: libzmq frees a closed socket's trie in its own thread, when it gets to it
TRIM_FOR = 3.0
#: seconds a peer address may stay over its share, and the total over the cap (up to
#: twice it), before the peer is refused: a forwarder in front passes a burst beyond its
#: own cap for the moment it takes to notice and reset, which frees it here too
GRACE = 1.0
_TOTAL = ""  # the key of the total's grace (no peer address is empty)


def max_frame(caps: SubscriptionCaps, *, curve: bool = False) -> int:
    """``ZMQ_MAXMSGSIZE`` for prefixes up to ``caps.max_prefix`` bytes (at least 277 under
    CURVE, whose handshake needs frames that large)."""
    if not curve:
        return caps.max_prefix + SUBSCRIBE_OVERHEAD
    return max(caps.max_prefix + SUBSCRIBE_OVERHEAD + CURVE_OVERHEAD, CURVE_HANDSHAKE)


def configure_xpub(sock: zmq.Socket[Any], caps: SubscriptionCaps, *, curve: bool = False) -> None:
    """A guarded publisher's options: prefixes up to ``caps.max_prefix`` bytes (see
    :func:`max_frame`), at most :data:`SUBSCRIPTION_HWM` of them taken in at once, every
    subscription notified, every connection asked of the gate."""
    sock.setsockopt(zmq.MAXMSGSIZE, max_frame(caps, curve=curve))
    sock.setsockopt(zmq.RCVHWM, SUBSCRIPTION_HWM)
    sock.setsockopt(zmq.XPUB_VERBOSER, 1)
    sock.setsockopt(zmq.ZAP_DOMAIN, PUB_DOMAIN.encode())


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


_malloc_trim = _find_malloc_trim()


def trim_heap() -> None:
    """Give the C heap's free memory back to the OS (glibc's ``malloc_trim``; elsewhere
    nothing)."""
    if _malloc_trim is not None:
        _malloc_trim(0)


class SubscriptionBook:
    """What each subscriber connection of one XPUB holds, from its notifications.

    Per connection (the ``User-Id`` the gate gave it) a set of prefixes, as libzmq's trie
    keeps one per pipe: a subscribe adds its prefix, an unsubscribe removes it; a
    duplicate subscribe or an unsubscribe of a prefix the connection does not hold changes
    nothing, here as in libzmq. When a connection leaves, libzmq reports each prefix it
    held as an unsubscribe without metadata, all together: :meth:`depart` takes such a run
    and removes the connections whose whole set it holds (then, for anything left, the
    prefix from some connection that holds it). ``in_force`` never falls below what the
    trie holds.
    """

    def __init__(self) -> None:
        self.in_force = 0
        self._held: dict[str, set[bytes]] = {}  # connection -> its prefixes
        self._address: dict[str, str] = {}  # connection -> peer address
        self._holders: dict[bytes, set[str]] = {}  # prefix -> connections holding it
        self._per_address: Counter[str] = Counter()

    def subscribe(self, conn: str, address: str, prefix: bytes) -> None:
        held = self._held.setdefault(conn, set())
        self._address.setdefault(conn, address)
        if prefix not in held:
            held.add(prefix)
            self._holders.setdefault(prefix, set()).add(conn)
            self._per_address[self._address[conn]] += 1
            self.in_force += 1

    def unsubscribe(self, conn: str, prefix: bytes) -> None:
        held = self._held.get(conn)
        if held is not None and prefix in held:
            self._remove(conn, prefix)

    def depart(self, run: Counter[bytes]) -> int:
        """Remove what a run of departures (prefix -> how many) gave back; returns how many
        subscriptions that removed."""
        left = Counter(run)
        size = sum(left.values())
        removed = 0
        candidates = {conn for prefix in left for conn in self._holders.get(prefix, ())}
        for conn in sorted(candidates, key=lambda c: len(self._held[c]), reverse=True):
            held = self._held[conn]
            count = len(held)
            if count <= size and all(left[p] > 0 for p in held):
                for prefix in list(held):
                    left[prefix] -= 1
                    self._remove(conn, prefix)
                size -= count
                removed += count
        for prefix, count in left.items():
            for conn in list(self._holders.get(prefix, ()))[:count]:
                self._remove(conn, prefix)
                removed += 1
        return removed

    def _remove(self, conn: str, prefix: bytes) -> None:
        held = self._held[conn]
        held.discard(prefix)
        holders = self._holders[prefix]
        holders.discard(conn)
        if not holders:
            del self._holders[prefix]
        address = self._address[conn]
        self._per_address[address] -= 1
        if not self._per_address[address]:
            del self._per_address[address]
        if not held:
            del self._held[conn], self._address[conn]
        self.in_force -= 1

    def held_by(self, address: str) -> int:
        return self._per_address[address]

    def busiest(self) -> str | None:
        """The address holding the most subscriptions."""
        top = self._per_address.most_common(1)
        return top[0][0] if top else None

    @property
    def peers(self) -> int:
        return len(self._per_address)

    def clear(self) -> None:
        self.in_force = 0
        self._held.clear()
        self._address.clear()
        self._holders.clear()
        self._per_address.clear()


class _Guard:
    """What both guards share: the caps, the gate, the counters, the log, the trim."""

    def __init__(self, what: str, caps: SubscriptionCaps, gate: PeerGate) -> None:
        self.what = what
        self.caps = caps
        self.gate = gate
        self.stats = SubscriptionStats()
        self._limiter = RateLimiter(10.0)
        self._trim_until = 0.0  # monotonic: trim until then (see TRIM_FOR)
        self._trimmed = 0.0  # monotonic: the last trim

    def _refuse(self, address: str | None, why: str) -> None:
        """Count a cap broken, refuse ``address`` (if known) and say so (rate-limited)."""
        self.stats.over_cap += 1
        if address is not None:
            self.gate.refuse(address)
        who = f"refusing {address} for {self.gate.cooldown:.0f} s and" if address else ""
        self._limiter.log(
            log,
            logging.WARNING,
            address or "",
            "%s: %s; %s resetting the socket to free what it holds",
            self.what,
            why,
            who,
        )

    def _freed(self, count: int) -> None:
        """``count`` subscriptions were given back (all of a socket's for a reset)."""
        if count >= TRIM_AFTER:
            self._trim_until = time.monotonic() + TRIM_FOR

    def trim_if_due(self) -> None:
        """Give memory back to the OS, at most every 0.25 s for :data:`TRIM_FOR` seconds
        after a reset or a large departure (called on each wake-up of the guard)."""
        now = time.monotonic()
        if now < self._trim_until and now - self._trimmed >= 0.25:
            self._trimmed = now
            trim_heap()

    def snapshot(self) -> dict[str, Any]:
        caps = self.caps
        return {
            **self.stats.snapshot(),
            "max_prefix": caps.max_prefix,
            "share": caps.share,
            "cap": caps.cap,
        }


class SubscriptionGuard(_Guard):
    """A node's publisher: an XPUB bound on ``endpoint`` whose subscriptions are counted
    per connection (:class:`SubscriptionBook`) and capped: per peer address at
    ``caps.share``, in total at ``caps.cap``.

    ``socket`` is the plain socket to publish on (sends cost what a PUB's do); after a
    reset it is a new one, handed to ``on_reset``. ``serve`` reads the notifications.
    """

    def __init__(
        self,
        ctx: zmq.Context[Any],
        endpoint: str,
        what: str,
        caps: SubscriptionCaps,
        gate: PeerGate,
        *,
        options: SocketOptions = DEFAULT_OPTIONS,
    ) -> None:
        super().__init__(what, caps, gate)
        self.endpoint = endpoint
        self.book = SubscriptionBook()
        self.on_reset: Callable[[zmq.Socket[Any]], None] | None = None
        #: address (or _TOTAL) -> when it went over its share (the cap)
        self._over_since: dict[str, float] = {}
        self._ctx = ctx
        self._options = options
        self.socket = self._new_socket()
        try:
            bind(self.socket, endpoint, what)
        except BaseException:
            self.socket.close(linger=0)
            raise
        self._readable = zmq.asyncio.Socket.from_socket(self.socket)

    def _new_socket(self) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = zmq.Socket(self._ctx, zmq.XPUB)
        self._options.apply(sock)
        configure_xpub(sock, self.caps)
        return sock

    async def serve(self) -> None:
        """Read and count notifications until cancelled; reset when a cap breaks. A
        ZeroMQ error is logged (at most every 10 s) and the next wake-up tries again."""
        while True:
            try:
                await self._readable.poll(WAKE_MS)
                await self._take_all()
            except zmq.ZMQError as exc:
                self._limiter.log(
                    log, logging.WARNING, "error", "%s: reading subscriptions: %s", self.what, exc
                )
                await asyncio.sleep(WAKE_MS / 1000)  # an error again at once must not spin
            self.trim_if_due()

    async def _take_all(self) -> None:
        while True:
            taken, broken = self.take(BATCH)
            broken = broken or self._over_too_long()
            if broken is not None:
                self._refuse(*broken)
                await self.reset()
                return
            if taken < BATCH:
                return
            await asyncio.sleep(0)

    def take(self, limit: int) -> tuple[int, tuple[str | None, str] | None]:
        """Read up to ``limit`` notifications; returns how many, and ``(address, why)``
        as soon as one breaks a cap."""
        sock, book = self.socket, self.book
        run: Counter[bytes] = Counter()  # departures not yet given back
        taken = 0
        broken: tuple[str | None, str] | None = None
        while taken < limit and broken is None:
            try:
                frame = sock.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                break
            taken += 1
            data = frame.bytes
            if not data or data[0] > 1:
                continue
            try:
                address = str(frame.get("Peer-Address"))
            except zmq.ZMQError:  # a departed connection's prefixes carry no metadata
                if data[0] == 0:
                    run[data[1:]] += 1
                continue
            if run:
                self._freed(book.depart(run))
                run.clear()
            try:
                conn = str(frame.get("User-Id"))
            except zmq.ZMQError:  # admitted without ZAP: the address stands for it
                conn = address
            if data[0] == 0:
                book.unsubscribe(conn, data[1:])
                continue
            book.subscribe(conn, address, data[1:])
            broken = self._broken(address)
        if run:
            self._freed(book.depart(run))
        return taken, broken

    def _broken(self, address: str) -> tuple[str | None, str] | None:
        """The total over twice the cap breaks at once; the total over the cap, or an
        address over its share, starts a grace (:meth:`_over_too_long`)."""
        book, caps, now = self.book, self.caps, time.monotonic()
        if book.in_force > 2 * caps.cap:
            return self._busiest()
        if book.in_force > caps.cap:
            self._over_since.setdefault(_TOTAL, now)
        if caps.share is not None and book.held_by(address) > caps.share:
            self._over_since.setdefault(address, now)
        return None

    def _busiest(self) -> tuple[str | None, str]:
        book, top = self.book, self.book.busiest()
        return top, (
            f"{book.in_force} subscriptions in force, over the cap of {self.caps.cap}; "
            f"{top} holds the most ({book.held_by(top) if top else 0})"
        )

    def _over_too_long(self) -> tuple[str | None, str] | None:
        """What has been over the cap, or over its share, for :data:`GRACE` seconds."""
        caps, now = self.caps, time.monotonic()
        for key, since in list(self._over_since.items()):
            if key == _TOTAL:
                over = self.book.in_force > caps.cap
            else:
                held = self.book.held_by(key)
                over = caps.share is not None and held > caps.share
            if not over:
                del self._over_since[key]
            elif now - since >= GRACE:
                if key == _TOTAL:
                    return self._busiest()
                return key, f"{key} holds {held} subscriptions, over its share of {caps.share}"
        return None

    async def reset(self) -> None:
        """Close the socket (libzmq frees its trie) and bind a new one on the endpoint;
        the new one takes sends at once (they go nowhere until it is bound)."""
        old = self.socket
        self.socket = self._new_socket()
        self._readable = zmq.asyncio.Socket.from_socket(self.socket)
        if self.on_reset is not None:
            self.on_reset(self.socket)
        self.book.clear()
        self._over_since.clear()
        old.close(linger=0)
        await bind_again(self.socket, self.endpoint, self.what)
        self.stats.resets += 1
        self._freed(TRIM_AFTER)

    def snapshot(self) -> dict[str, Any]:
        self.stats.in_force = self.book.in_force
        self.stats.peers = self.book.peers
        return super().snapshot()

    def close(self) -> None:
        if not self.socket.closed:
            self.socket.close(linger=0)


async def bind_again(sock: zmq.Socket[Any], endpoint: str, what: str) -> None:
    """Bind ``sock`` where a socket just closed: libzmq closes the old listener in its
    own thread, so the port is free a moment later. Tries until it is (a daemon whose
    port another process took keeps trying, and says so every 10 s)."""
    delay, said = 0.001, time.monotonic()
    while True:
        try:
            sock.bind(endpoint)
            return
        except zmq.ZMQError as exc:
            if time.monotonic() - said > 10.0:
                said = time.monotonic()
                log.error("%s: cannot bind %s again after a reset: %s", what, endpoint, exc)
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


class ProxyGuard(_Guard):
    """A forwarder's outer publisher, which libzmq's proxy owns: capped in total at
    ``caps.cap``.

    ``in_force`` counts the distinct prefixes passed upstream (exact, but read by Python
    behind the proxy); ``counted`` is libzmq's count of distinct prefixes in the XPUB's
    trie (ahead of ``in_force`` in a burst, and no peer can lower it, but libzmq 4.3.5
    also keeps counting the prefixes of subscribers that left, until a reset). That stale
    part is learnt at heartbeats when neither count moved (:meth:`settle`); beyond the
    cap it costs a reset that refuses no one. ``port`` is the XPUB's TCP port. The daemon
    resets the pub path when :meth:`over` or :meth:`settle` says so, then calls
    :meth:`reset_done`.
    """

    def __init__(
        self,
        what: str,
        caps: SubscriptionCaps,
        gate: PeerGate,
        *,
        in_force: Callable[[], int],
        counted: Callable[[], int],
        port: int | None,
    ) -> None:
        super().__init__(what, caps, gate)
        self._in_force = in_force
        self._counted = counted
        self.port = port
        self.stale = 0  # what libzmq counts of departed subscribers' prefixes
        self._last: tuple[int, int] | None = None
        self._over_since: float | None = None  # when the count went over the cap

    def over(self) -> bool:
        """True if the subscriptions in force have been over the cap for :data:`GRACE`
        seconds, or are over twice the cap: the peer that sent the most is refused, and
        the pub path must be reset. (The grace is for a forwarder further out, whose
        burst beyond its own cap ends when it resets.)"""
        cap = self.caps.cap
        upstream, counted = self._in_force(), self._counted()
        in_force, now = max(upstream, counted - self.stale), time.monotonic()
        if in_force <= cap:
            self._over_since = None
            return False
        if self._over_since is None:
            self._over_since = now
        if in_force <= 2 * cap and now - self._over_since < GRACE:
            return False
        busiest = busiest_peer(self.port) if self.port is not None else None
        why = (
            f"over the cap of {cap} distinct subscriptions: {upstream} pass upstream, "
            f"libzmq counts {counted} in the pub's trie ({self.stale} of them left by "
            "subscribers gone)"
        )
        if busiest is not None:
            why += f"; {busiest[0]} sent the most ({busiest[1]} bytes)"
        self._refuse(busiest[0] if busiest else None, why)
        return True

    def settle(self) -> bool:
        """At a heartbeat: if neither count moved since the last one, libzmq's count beyond
        the prefixes in force is stale. True if the stale part is over the cap (a reset,
        which refuses no one, frees it)."""
        now = (self._in_force(), self._counted())
        if now == self._last:
            self.stale = max(0, now[1] - now[0])
        self._last = now
        if self.stale <= self.caps.cap:
            return False
        self.stats.over_cap += 1
        log.warning(
            "%s: libzmq still counts %d prefixes of subscribers that left, over the cap "
            "of %d; resetting the socket to free them",
            self.what,
            self.stale,
            self.caps.cap,
        )
        return True

    def reset_done(self) -> None:
        self.stats.resets += 1
        self.stale = 0
        self._last = None
        self._over_since = None
        self._freed(TRIM_AFTER)

    def snapshot(self) -> dict[str, Any]:
        self.stats.in_force = self._in_force()
        return {**super().snapshot(), "counted": self._counted(), "stale": self.stale}
