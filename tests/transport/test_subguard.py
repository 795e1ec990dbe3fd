"""A publisher's subscriptions, capped (issue 11, item 2).

The book's arithmetic on the notifications an XPUB gives, then a guarded XPUB on
loopback attacked with raw pyzmq SUB sockets bound to another loopback address
(127.0.0.2, as another host would be) while a subscriber on 127.0.0.1 keeps listening.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import zmq
import zmq.asyncio

from rovbus.config.subscriptions import SubscriptionCaps
from rovbus.transport import Publisher, subguard
from rovbus.transport.gate import GateAuthenticator, PeerGate
from rovbus.transport.subguard import ProxyGuard, SubscriptionBook, SubscriptionGuard
from rovbus.wire.codec import Codec
from rovbus.wire.serializers import Serializer
from tests.helpers.ports import free_ports
from tests.helpers.waiting import eventually

ATTACKER = "127.0.0.2"
TOPIC = "alpha/hb"


# -- the book ------------------------------------------------------------------------------


def test_the_book_counts_what_the_trie_holds_per_connection() -> None:
    book = SubscriptionBook()
    book.subscribe("1", ATTACKER, b"a")
    book.subscribe("1", ATTACKER, b"a")  # a duplicate: libzmq holds it once
    book.subscribe("2", ATTACKER, b"a")  # another connection: libzmq holds it again
    book.subscribe("3", "127.0.0.1", b"b")
    assert (book.in_force, book.held_by(ATTACKER), book.held_by("127.0.0.1")) == (3, 2, 1)
    book.unsubscribe("3", b"a")  # not held by that connection: nothing changes
    assert book.in_force == 3
    book.unsubscribe("1", b"a")
    assert (book.in_force, book.held_by(ATTACKER), book.busiest()) == (2, 1, ATTACKER)


def test_unsubscribes_from_a_second_connection_do_not_lower_what_the_first_holds() -> None:
    # by address alone, B's two unsubscribes would cancel A's and B's subscribes
    book = SubscriptionBook()
    for i in range(100):
        prefix = b"p%d" % i
        book.subscribe("A", ATTACKER, prefix)
        book.subscribe("B", ATTACKER, prefix)
        book.unsubscribe("B", prefix)
        book.unsubscribe("B", prefix)
    assert book.in_force == book.held_by(ATTACKER) == 100


def test_a_departure_gives_back_the_connection_whose_whole_set_it_is() -> None:
    book = SubscriptionBook()
    for prefix in (b"alpha/hb", b"alpha/can", b"beta/hb"):
        book.subscribe("gui", "127.0.0.1", prefix)
    book.subscribe("cli", ATTACKER, b"alpha/hb")
    book.subscribe("cli", ATTACKER, b"beta/hb")
    # the cli leaves: libzmq gives back its two prefixes, which the gui holds too
    assert book.depart(Counter({b"alpha/hb": 1, b"beta/hb": 1})) == 2
    assert (book.held_by("127.0.0.1"), book.held_by(ATTACKER), book.peers) == (3, 0, 1)
    # then the gui: nothing is left
    assert book.depart(Counter({b"alpha/hb": 1, b"alpha/can": 1, b"beta/hb": 1})) == 3
    assert book.in_force == 0


# -- a guarded XPUB under attack -----------------------------------------------------------


@dataclass
class Guarded:
    ctx: zmq.asyncio.Context
    guard: SubscriptionGuard
    publisher: Publisher
    endpoint: str
    subs: list[zmq.Socket[Any]]
    sent: int = 0  # messages published so far, each numbered in its content

    def sub(self, *prefixes: bytes, source: str | None = None) -> zmq.Socket[Any]:
        """A raw SUB from ``source`` (default 127.0.0.1), every subscription sent."""
        sock: zmq.Socket[Any] = zmq.Socket(self.ctx, zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)
        for prefix in prefixes:
            sock.subscribe(prefix)
        port = self.endpoint.rsplit(":", 1)[1]
        where = f"tcp://{source}:0;127.0.0.1:{port}" if source else self.endpoint
        sock.connect(where)
        self.subs.append(sock)
        return sock

    async def listener(self, *prefixes: bytes) -> zmq.Socket[Any]:
        """A subscriber on 127.0.0.1 to ``TOPIC`` (and ``prefixes``), heard once."""
        sock = self.sub(TOPIC.encode(), *prefixes)
        await eventually(lambda: self.receives(sock), what="the listener's first message")
        return sock

    async def receives(self, sock: zmq.Socket[Any], since: int = 0) -> bool:
        """True once ``sock`` got a message published (numbered) from ``since`` on; each
        call publishes one more."""
        self.publisher.publish(TOPIC, "heartbeat", {"n": self.sent})
        self.sent += 1
        got = False
        while sock.poll(0):
            message = self.publisher.codec.decode(sock.recv_multipart())
            got = got or message.content["n"] >= since
        return got


@pytest.fixture
async def guarded() -> AsyncIterator[Callable[[SubscriptionCaps], Guarded]]:
    made: list[tuple[Guarded, GateAuthenticator, Any]] = []

    def make(caps: SubscriptionCaps) -> Guarded:
        ctx = zmq.asyncio.Context()
        gate = PeerGate("test")
        auth = GateAuthenticator(ctx, gate)
        auth.start()
        endpoint = f"tcp://127.0.0.1:{free_ports(1)[0]}"
        guard = SubscriptionGuard(ctx, endpoint, "pub", caps, gate)
        publisher = Publisher("pub", guard.socket, Codec(username="alpha"), Serializer.JSON)
        guard.on_reset = publisher.use_socket
        task = asyncio.get_running_loop().create_task(guard.serve())
        g = Guarded(ctx, guard, publisher, endpoint, [])
        made.append((g, auth, task))
        return g

    yield make
    for g, auth, task in made:
        task.cancel()
        for sock in g.subs:
            sock.close(linger=0)
        g.guard.close()
        auth.stop()
        g.ctx.term()


def prefixes(count: int, size: int = 64) -> list[bytes]:
    """``count`` distinct prefixes of ``size`` bytes, distinct from their first bytes."""
    return [(b"%08x/" % i * (size // 9 + 1))[:size] for i in range(count)]


async def test_a_peer_over_its_share_is_refused_and_the_others_receive_again(
    guarded: Callable[[SubscriptionCaps], Guarded],
) -> None:
    g = guarded(SubscriptionCaps(max_prefix=128, share=50, cap=100))
    legit = await g.listener()
    attacker = g.sub(*prefixes(51), source=ATTACKER)
    await eventually(lambda: g.guard.stats.resets == 1, what="the reset")
    reset_at = g.sent
    assert g.guard.stats.over_cap == 1
    assert ATTACKER in g.guard.gate.refusing()
    # the attacker's SUB reconnects by itself, and is refused each time
    await eventually(lambda: g.guard.gate.refused >= 1, what="the attacker's reconnection refused")
    await eventually(lambda: g.receives(legit, reset_at), what="a message after the reset")
    assert g.guard.book.in_force == 1  # the legitimate subscriber's one subscription
    assert not attacker.poll(0)


async def test_two_connections_of_one_peer_cannot_unsubscribe_each_others_subscriptions(
    guarded: Callable[[SubscriptionCaps], Guarded],
) -> None:
    g = guarded(SubscriptionCaps(max_prefix=128, share=50, cap=100))
    holder = g.sub(source=ATTACKER)
    canceller = g.sub(source=ATTACKER)
    for prefix in prefixes(51):
        holder.subscribe(prefix)
        canceller.subscribe(prefix)
        canceller.setsockopt(zmq.UNSUBSCRIBE, prefix)
        canceller.setsockopt(zmq.UNSUBSCRIBE, prefix)  # one the socket no longer holds
    await eventually(lambda: g.guard.stats.resets == 1, what="the reset")
    assert ATTACKER in g.guard.gate.refusing()


async def test_over_the_total_the_peer_holding_the_most_is_refused(
    guarded: Callable[[SubscriptionCaps], Guarded],
) -> None:
    g = guarded(SubscriptionCaps(max_prefix=128, share=60, cap=100))
    legit = await g.listener(*prefixes(44, size=20))
    await eventually(lambda: g.guard.book.in_force == 45, what="45 subscriptions in force")
    g.sub(*prefixes(56, size=30), source=ATTACKER)
    await eventually(lambda: g.guard.stats.resets == 1, what="the reset")
    assert list(g.guard.gate.refusing()) == [ATTACKER]
    reset_at = g.sent
    await eventually(lambda: g.receives(legit, reset_at), what="a message after the reset")
    await eventually(lambda: g.guard.book.in_force == 45, what="the legitimate ones back")
    assert g.guard.book.held_by(ATTACKER) == 0


async def test_a_prefix_longer_than_max_prefix_drops_its_subscriber(
    guarded: Callable[[SubscriptionCaps], Guarded],
) -> None:
    g = guarded(SubscriptionCaps(max_prefix=128, share=50, cap=100))
    legit = await g.listener()
    attacker = g.sub(source=ATTACKER)
    dropped = attacker.get_monitor_socket(zmq.EVENT_DISCONNECTED)
    try:
        attacker.subscribe(b"x" * 129)
        await eventually(lambda: dropped.poll(0), what="the attacker dropped")
    finally:
        attacker.disable_monitor()
        dropped.close(linger=0)
    assert g.guard.book.in_force == 1  # the legitimate subscriber's, never the long one
    assert g.guard.stats.resets == 0
    await eventually(lambda: g.receives(legit), what="a message after the attack")


# -- a forwarder's guard, which sees counts only -------------------------------------------


def proxy_guard(counts: dict[str, int]) -> ProxyGuard:
    """A forwarder's guard (cap 100) reading ``counts``: ``upstream`` (what passes
    upstream) and ``libzmq`` (libzmq's count of the XPUB's prefixes)."""
    return ProxyGuard(
        "test",
        SubscriptionCaps(max_prefix=128, share=None, cap=100),
        PeerGate("test"),
        in_force=lambda: counts["upstream"],
        counted=lambda: counts["libzmq"],
        port=None,
    )


def test_a_forwarders_guard_refuses_over_twice_the_cap_at_once_and_over_the_cap_after_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    counts = {"upstream": 0, "libzmq": 0}
    guard = proxy_guard(counts)
    monkeypatch.setattr(subguard, "GRACE", 3600.0)
    counts.update(upstream=150, libzmq=150)  # a burst a forwarder further out will end
    assert not guard.over()
    counts.update(libzmq=201)  # libzmq's trie: no peer can lower that count
    assert guard.over()
    assert guard.stats.over_cap == 1
    guard.reset_done()
    counts.update(upstream=150, libzmq=150)
    monkeypatch.setattr(subguard, "GRACE", 0.0)
    assert guard.over()


def test_a_forwarders_guard_learns_what_departed_subscribers_left_in_libzmqs_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(subguard, "GRACE", 3600.0)
    counts = {"upstream": 10, "libzmq": 90}
    guard = proxy_guard(counts)
    assert not guard.settle()  # the first look: nothing known to be stable yet
    assert not guard.settle()  # nothing moved: 80 of libzmq's count are stale
    assert guard.stale == 80
    counts.update(upstream=60, libzmq=140)  # 50 new subscribers' prefixes: 60 in force
    assert not guard.over()
    counts.update(libzmq=190)  # 50 more that do not pass upstream (cancelled for it)
    assert not guard.settle()
    assert not guard.over()  # 110 live: over the cap, in its grace
    counts.update(upstream=10, libzmq=200)
    assert not guard.settle()
    counts.update(libzmq=200)
    assert guard.settle()  # 190 stale: over the cap, a reset frees them
