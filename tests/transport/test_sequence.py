"""Per-topic sequence numbers: a publisher numbers what it sends on each topic (header
``seq``), a subscriber counts what never arrived (``SocketStats.missed``).

The gap rules run on the real ``Subscriber`` fed envelopes as a peer would send them; the
rest goes over loopback TCP between a real ``Publisher`` and ``Subscriber``, with real
drops at small high-water marks.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import zmq
import zmq.asyncio
from jupyter_client.session import Session

from rovbus.errors import EnvelopeError
from rovbus.transport import Publisher, SocketOptions, Subscriber
from rovbus.transport.publisher import MAX_SEQ_TOPICS
from rovbus.transport.subscriber import MAX_TRACKED
from rovbus.wire.codec import Codec
from rovbus.wire.serializers import Serializer

TOPIC = b"alpha/can/can0/100"


def sent(codec: Codec, seq: int | None, topic: bytes = TOPIC) -> list[bytes]:
    """The frames of message ``seq`` on ``topic`` as ``codec``'s publisher sends them."""
    return codec.encode_new("can_frame", {"n": seq}, (topic,), seq=seq)


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    """A Subscriber connected nowhere: the tests hand it what a socket would receive."""
    ctx = zmq.asyncio.Context()
    sub = Subscriber(ctx, [], Codec(username="op"))
    yield sub
    sub.close()
    ctx.destroy(linger=0)


def feed(sub: Subscriber, *frames: list[bytes]) -> None:
    for f in frames:
        sub.decode(f)


# -- the gap rules --------------------------------------------------------------------------


def test_the_first_message_is_the_baseline_and_consecutive_ones_count_nothing(
    subscriber: Subscriber,
) -> None:
    node = Codec(username="alpha")
    feed(subscriber, sent(node, 40), sent(node, 41), sent(node, 42))
    assert subscriber.stats.missed == 0
    assert subscriber.stats.messages_in == 3
    assert subscriber.missed_topics == {}


def test_a_gap_counts_the_messages_in_it(subscriber: Subscriber) -> None:
    node = Codec(username="alpha")
    feed(subscriber, sent(node, 1), sent(node, 2), sent(node, 5), sent(node, 6))
    assert subscriber.stats.missed == 2  # 3 and 4
    feed(subscriber, sent(node, 10))
    assert subscriber.stats.missed == 5  # and 7, 8, 9
    assert subscriber.missed_topics == {TOPIC: 5}


def test_topics_and_sessions_are_numbered_apart(subscriber: Subscriber) -> None:
    alpha, beta = Codec(username="alpha"), Codec(username="beta")
    other = b"alpha/hb"
    feed(
        subscriber,
        sent(alpha, 1),
        sent(alpha, 1, other),  # its own count, not a replay of TOPIC's 1
        sent(beta, 7),  # another publisher: its own baseline
        sent(alpha, 2),
        sent(alpha, 2, other),
        sent(beta, 9),  # beta missed 8
        sent(alpha, 3),
    )
    assert subscriber.stats.missed == 1
    assert subscriber.missed_topics == {TOPIC: 1}


def test_a_restart_and_an_old_message_replayed_count_nothing(subscriber: Subscriber) -> None:
    node = Codec(username="alpha")
    feed(subscriber, *(sent(node, n) for n in range(1, 6)))
    feed(subscriber, sent(node, 3))  # a last-value cache replays an old one: ignored
    feed(subscriber, sent(node, 6))
    assert subscriber.stats.missed == 0
    feed(subscriber, sent(node, 1), sent(node, 2))  # the publisher counts from 1 again
    assert subscriber.stats.missed == 0
    feed(subscriber, sent(node, 4))  # and a gap after the restart counts
    assert subscriber.stats.missed == 1


def test_messages_without_an_integer_seq_are_not_tracked(subscriber: Subscriber) -> None:
    node = Codec(username="old-rovbus")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kernel = Session(key=b"", packer="msgpack", unpacker="msgpack", username="kernel")
    jupyter = [kernel.serialize(kernel.msg("stream", {"n": n}), ident=TOPIC) for n in range(3)]
    odd = [node.message("can_frame", identities=(TOPIC,)) for _ in range(2)]
    odd[0].header["seq"] = "7"
    odd[1].header["seq"] = True
    feed(subscriber, sent(node, None), *jupyter, sent(node, None), *map(node.encode, odd))
    assert subscriber.stats.messages_in == 7
    assert subscriber.stats.rejected == 0
    assert subscriber.stats.missed == 0
    assert subscriber.last_seq == {}


def test_the_tracking_tables_are_bounded(subscriber: Subscriber) -> None:
    session = "alpha-session"
    for i in range(MAX_TRACKED + 1):
        topic = f"alpha/sig/can0/{i}".encode()
        subscriber.track(session, topic, 1)
        subscriber.track(session, topic, 3)  # one missed on every topic
        assert len(subscriber.last_seq) <= MAX_TRACKED
    assert subscriber.stats.missed == MAX_TRACKED + 1  # every gap counts in the total
    assert len(subscriber.missed_topics) == MAX_TRACKED  # per topic only so many are kept


# -- over loopback --------------------------------------------------------------------------


class Loopback:
    """A Publisher on a plain PUB socket (as a node's) and a Subscriber, over TCP."""

    def __init__(self, pub_options: SocketOptions, sub_options: SocketOptions) -> None:
        self.ctx = zmq.asyncio.Context()
        pub = zmq.Socket(self.ctx, zmq.PUB)
        pub_options.apply(pub)
        pub.setsockopt(zmq.SNDBUF, 4096)
        pub.bind("tcp://127.0.0.1:*")
        endpoint = pub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.publisher = Publisher("pub", pub, Codec(username="alpha"), Serializer.MSGPACK)
        self.subscriber = Subscriber(
            self.ctx,
            [endpoint],
            Codec(username="op"),
            ["keep/", "probe"],
            options=sub_options,
            setup=lambda s: s.setsockopt(zmq.RCVBUF, 4096),
        )

    async def joined(self) -> None:
        """Publish probes until one arrives: the subscription reached the publisher."""
        for _ in range(100):
            self.publisher.publish("probe", "probe", {})
            try:
                msg = await asyncio.wait_for(self.subscriber.recv(), 0.1)
            except TimeoutError:
                continue
            assert msg.topic == "probe"
            return
        raise AssertionError("the subscriber never joined")

    async def drain(self, topic: str, mark: str = "keep/end") -> list[int]:
        """The seqs of ``topic`` received until a mark published on ``mark`` after them has
        arrived (ZeroMQ keeps the order); ``mark`` may be ``topic`` itself (its marks'
        seqs are then in the list). A mark is published now, and again whenever nothing
        comes for 0.5 s, in case a high-water mark dropped the last one."""
        got: list[int] = []
        marks = 0
        self.publisher.publish(mark, "mark", {"mark": marks})
        while True:
            try:
                msg = await asyncio.wait_for(self.subscriber.recv(), 0.5)
            except TimeoutError:
                marks += 1
                assert marks < 20, "no mark ever arrived"
                self.publisher.publish(mark, "mark", {"mark": marks})
                continue
            if msg.topic == topic:
                got.append(msg.header["seq"])
            if msg.topic == mark and msg.content.get("mark") == marks:
                return got

    def close(self) -> None:
        self.subscriber.close()
        self.publisher.close(linger_ms=0)
        self.ctx.destroy(linger=0)


@pytest.fixture
async def tiny() -> AsyncIterator[Loopback]:
    """High-water marks of 1 and 4 KiB kernel buffers: a burst is mostly dropped."""
    link = Loopback(SocketOptions(linger_ms=0, sndhwm=1), SocketOptions(linger_ms=0, rcvhwm=1))
    await link.joined()
    yield link
    link.close()


async def test_drops_at_the_high_water_marks_are_counted_exactly(tiny: Loopback) -> None:
    burst = 5_000
    payload: dict[str, Any] = {"data": bytes(64)}
    for _ in range(burst):  # the subscriber does not read meanwhile
        tiny.publisher.publish("keep/a", "can_frame", payload)
    # a drop at the end of the burst is counted once a later message of the topic arrives:
    # read until one published after the burst has arrived
    got = await tiny.drain("keep/a", mark="keep/a")
    assert got[-1] > burst
    assert len([seq for seq in got if seq <= burst]) < burst, (
        "nothing was dropped: the test did not load the link"
    )
    assert got == sorted(set(got))  # in order, none twice
    # every message sent after the first that arrived (the baseline) and not received
    lost = got[-1] - got[0] + 1 - len(got)
    assert lost > 0
    assert tiny.subscriber.stats.missed == lost
    assert tiny.subscriber.missed_topics == {b"keep/a": lost}
    assert tiny.publisher.stats.dropped == 0  # the publisher cannot see these drops


async def test_a_message_that_fails_to_encode_uses_up_no_number() -> None:
    """Content the serializer refuses raises and sends nothing; the next message of the
    topic takes the number, so no subscriber counts a message that never existed."""
    link = Loopback(SocketOptions(linger_ms=0), SocketOptions(linger_ms=0))
    try:
        await link.joined()
        pub = link.publisher
        pub.publish("keep/a", "note", {})
        with pytest.raises(EnvelopeError, match="cannot serialize"):
            pub.publish("keep/a", "note", {"bad": object()})
        pub.publish("keep/a", "note", {})
        assert await link.drain("keep/a") == [1, 2]
        assert link.subscriber.stats.missed == 0
    finally:
        link.close()


async def test_the_publishers_bounded_table_restarts_the_count_without_a_loss() -> None:
    link = Loopback(SocketOptions(linger_ms=0), SocketOptions(linger_ms=0))
    try:
        await link.joined()
        pub = link.publisher
        pub.publish("keep/a", "note", {})
        pub.publish("keep/a", "note", {})
        # fill the table with topics nobody subscribed to (ZeroMQ filters them out)
        for i in range(MAX_SEQ_TOPICS - len(pub.seqs)):
            pub.publish(f"other/{i}", "note", {})
        assert len(pub.seqs) == MAX_SEQ_TOPICS
        pub.publish("other/one-more", "note", {})  # the table is cleared
        assert len(pub.seqs) == 1
        pub.publish("keep/a", "note", {})
        pub.publish("keep/a", "note", {})
        assert await link.drain("keep/a") == [1, 2, 1, 2]
        assert link.subscriber.stats.missed == 0
    finally:
        link.close()


async def test_published_headers_carry_seq_per_topic_and_jupyter_reads_them() -> None:
    """What a third-party subscriber sees on the wire, msgpack and JSON, both publish paths."""
    ctx = zmq.Context()
    try:
        for serializer in Serializer:
            pub_sock = ctx.socket(zmq.PUB)
            pub_sock.setsockopt(zmq.LINGER, 0)
            pub_sock.bind("tcp://127.0.0.1:*")
            sub = ctx.socket(zmq.SUB)
            sub.setsockopt(zmq.LINGER, 0)
            sub.setsockopt(zmq.SUBSCRIBE, b"")
            sub.connect(pub_sock.getsockopt_string(zmq.LAST_ENDPOINT))
            codec = Codec(b"k3y", username="alpha")
            publisher = Publisher("pub", pub_sock, codec, serializer)
            while not sub.poll(50):  # until the subscription reached the publisher
                publisher.publish("join", "probe", {})
            request = codec.message("stats_request")
            publisher.publish("alpha/can/can0/100", "can_frame", {"n": 1})
            publisher.publish("alpha/hb", "heartbeat", {"n": 1})
            publisher.publish("alpha/status", "status", {"n": 1}, parent=request)
            publisher.publish("alpha/can/can0/100", "can_frame", {"n": 2})
            publisher.publish("alpha/status", "status", {"n": 2}, parent=request)
            publisher.publish("alpha/can/can0/100", "can_frame", {"n": 3})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                session = Session(key=b"k3y", packer=str(serializer), unpacker=str(serializer))
            seen: list[tuple[str, int]] = []
            while len(seen) < 6 and sub.poll(2000):
                idents, rest = session.feed_identities(sub.recv_multipart())
                if idents[0] == b"join":  # a probe (one sent before the first arrived, too)
                    continue
                msg = session.deserialize(rest)  # verifies the signature, too
                assert msg["header"]["session"] == codec.session
                seen.append((idents[0].decode(), msg["header"]["seq"]))
            assert seen == [
                ("alpha/can/can0/100", 1),
                ("alpha/hb", 1),
                ("alpha/status", 1),
                ("alpha/can/can0/100", 2),
                ("alpha/status", 2),
                ("alpha/can/can0/100", 3),
            ], serializer
            # requests and replies carry none
            assert "seq" not in codec.reply(request, "stats_reply", {}).header
            assert "seq" not in request.header
            sub.close()
            publisher.close(0)
    finally:
        ctx.destroy(linger=0)
