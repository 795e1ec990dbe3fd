"""Hostile input against a running node: random and mutated envelopes, forged, unsigned and
replayed requests, oversized messages, and CAN frames the node must not transmit; and
oversized messages against a forwarder (a process) on each of its outer sockets.

What must hold (issue 7, Hostile input): nothing a peer sends stops the daemon; valid
traffic goes on meanwhile (CAN frames published without loss, requests answered); every
rejection is counted in ``stats_request`` ``sockets.<channel>.rejected``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import can
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from zmq.utils.monitor import recv_monitor_message

from rovbus.config import load_system
from rovbus.wire.codec import DELIMITER, Codec
from rovbus.wire.message import Message
from tests.helpers.daemons import running
from tests.helpers.systemfile import forwarder_toml, node_toml
from tests.reliability.threads import NodeThread, Peer

ROUTERS = ("shell", "control", "stdin")
fuzz = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

frame_bytes = st.binary(max_size=96)
#: anything: a handful of random frames, sometimes with the delimiter among them
random_frames = st.lists(frame_bytes, min_size=1, max_size=9).flatmap(
    lambda frames: st.sampled_from(
        [frames, [DELIMITER, *frames], [*frames[:1], DELIMITER, *frames[1:]]]
    )
)


def wait_counted(peer: Peer, expected_in: dict[str, int], timeout: float = 10.0) -> dict[str, Any]:
    """Stats, once every channel has taken in at least the messages given."""
    deadline = time.monotonic() + timeout
    while True:
        sockets = peer.stats()["sockets"]
        if all(sockets[ch]["messages_in"] >= n for ch, n in expected_in.items()):
            return sockets  # type: ignore[no-any-return]
        if time.monotonic() > deadline:
            raise AssertionError(f"node did not take in {expected_in}: {sockets}")
        time.sleep(0.05)


def drain(sock: zmq.Socket[bytes]) -> list[list[bytes]]:
    got = []
    while sock.poll(0):
        got.append(sock.recv_multipart())
    return got


class FrameStream:
    """CAN frames put on the node's bus at a steady rate while a test runs, and a
    subscriber counting them on the node's pub: proof that valid traffic goes on."""

    def __init__(self, node: NodeThread, peer: Peer, rate: float = 400.0) -> None:
        channel = node.daemon.config.bus("can0").channel
        self.bus = can.Bus(interface="virtual", channel=channel)
        self.sub = peer.subscriber(f"{node.name}/can/can0/", f"{node.name}/hb")
        peer.wait_for(self.sub, lambda m: m.msg_type == "heartbeat")
        self.codec = peer.pub_codec
        self.rate = rate
        self.sent = 0
        self.received: set[int] = set()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write, daemon=True)
        self._writer.start()

    def _write(self) -> None:
        start = time.monotonic()
        while not self._stop.is_set():
            self.bus.send(
                can.Message(
                    arbitration_id=0x123, data=self.sent.to_bytes(8, "little"), is_extended_id=False
                )
            )
            self.sent += 1
            ahead = start + self.sent / self.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def collect(self) -> None:
        for frames in drain(self.sub):
            msg = self.codec.decode(frames)
            if msg.msg_type == "can_frame" and msg.content["dir"] == "rx":
                self.received.add(int.from_bytes(msg.content["data"], "little"))

    def finish(self) -> None:
        """Stop writing; every frame written must arrive on the subscriber."""
        self._stop.set()
        self._writer.join()
        deadline = time.monotonic() + 5
        while len(self.received) < self.sent and time.monotonic() < deadline:
            self.sub.poll(100)
            self.collect()
        self.bus.shutdown()
        missing = self.sent - len(self.received)
        assert self.sent > 0
        assert missing == 0, f"{missing} of {self.sent} CAN frames lost"


@contextmanager
def valid_traffic_goes_on(node: NodeThread, peer: Peer) -> Iterator[FrameStream]:
    """A ``FrameStream`` while the block attacks; after it, a request is still answered,
    every CAN frame of the stream arrived and the node still serves. Closes ``peer``."""
    try:
        stream = FrameStream(node, peer)
        yield stream
        assert peer.request("kernel_info_request").content["status"] == "ok"
        stream.finish()
        assert node.serving
    finally:
        peer.close()


def test_random_frames_on_every_socket_are_rejected_and_counted(
    node_thread: Callable[..., NodeThread],
) -> None:
    node = node_thread()
    peer = Peer(node, Codec(username="fuzzer"))
    sent = dict.fromkeys(ROUTERS, 0)
    hb = peer.ctx.socket(zmq.REQ)
    hb.setsockopt(zmq.LINGER, 0)
    hb.connect(node.endpoint("hb"))
    with valid_traffic_goes_on(node, peer) as stream:
        before = wait_counted(peer, {})

        @fuzz
        @given(frames=random_frames)
        def attack(frames: list[bytes]) -> None:
            for channel in ROUTERS:
                peer.dealer(channel).send_multipart(frames)
                sent[channel] += 1
            # hb echoes anything, raw and unsigned: the echo is its promise
            hb.send_multipart(frames)
            assert hb.poll(5000), "hb stopped echoing"
            assert hb.recv_multipart() == frames
            stream.collect()

        attack()
        expected_in = {ch: before[ch]["messages_in"] + n for ch, n in sent.items()}
        expected_in["shell"] += 1  # wait_counted's first stats request (same dealer, in order)
        after = wait_counted(peer, expected_in)
        for channel in ROUTERS:
            # random bytes never make a readable header: every one rejected, none answered
            rejected = after[channel]["rejected"] - before[channel]["rejected"]
            assert rejected == sent[channel], (channel, rejected, sent[channel])
            assert not peer.drain(channel), f"{channel} answered garbage"
        # valid traffic meanwhile: requests answered, CAN frames published without loss
        assert peer.request("kernel_info_request", channel="control").content["status"] == "ok"


def _valid_request(codec: Codec, kind: int) -> list[bytes]:
    """One of a few valid requests, as a DEALER sends it (no identities)."""
    requests: list[tuple[str, dict[str, Any]]] = [
        ("kernel_info_request", {}),
        ("stats_request", {}),
        ("node_info_request", {}),
        ("can_send_request", {"bus": "can0", "frames": [{"id": 0x123, "data": b"\x01\x02"}]}),
        ("execute_request", {"code": "status", "silent": False}),
        ("input_reply", {"value": "y"}),
    ]
    msg_type, content = requests[kind % len(requests)]
    return codec.encode(codec.message(msg_type, content))


@st.composite
def mutation(draw: st.DrawFn) -> tuple[int, Callable[[list[bytes]], list[bytes]]]:
    """A request kind and a change to the signed part of its envelope (delimiter through
    content), which is never a no-op."""
    kind = draw(st.integers(0, 5))
    how = draw(st.sampled_from(["flip", "truncate", "drop", "insert", "swap", "replace"]))
    index = draw(st.integers(0, 5))  # 0 delimiter, 1 signature, 2-5 header..content
    other = draw(st.integers(1, 5))
    offset = draw(st.integers(0, 10_000))
    bit = draw(st.integers(0, 7))
    junk = draw(st.binary(max_size=64))

    def mutate(frames: list[bytes]) -> list[bytes]:
        out = list(frames)
        frame = out[index]
        if how == "flip" and frame:
            at = offset % len(frame)
            out[index] = frame[:at] + bytes([frame[at] ^ (1 << bit)]) + frame[at + 1 :]
        elif how == "truncate":
            out[index] = frame[: offset % (len(frame) + 1)]
        elif how == "drop":
            del out[index]
        elif how == "insert":
            out.insert(max(index, 1), junk)
        elif how == "swap":
            out[index], out[other] = out[other], out[index]
        else:
            out[index] = junk
        return out

    return kind, mutate


def test_with_a_key_every_mutated_envelope_is_rejected_and_counted(
    node_thread: Callable[..., NodeThread],
) -> None:
    node = node_thread(signed=True)
    key = node.system.hmac_key()
    peer = Peer(node, Codec(key, username="op"))
    sent = dict.fromkeys(ROUTERS, 0)
    with valid_traffic_goes_on(node, peer) as stream:
        before = wait_counted(peer, {})

        @fuzz
        @given(change=mutation())
        def attack(change: tuple[int, Callable[[list[bytes]], list[bytes]]]) -> None:
            kind, mutate = change
            for channel in ROUTERS:
                original = _valid_request(peer.codec, kind)
                mutated = mutate(original)
                if mutated == original:
                    continue  # e.g. swapping two equal frames: not a mutation
                peer.dealer(channel).send_multipart(mutated)
                sent[channel] += 1
            stream.collect()

        attack()
        expected_in = {ch: before[ch]["messages_in"] + n for ch, n in sent.items()}
        after = wait_counted(peer, expected_in)
        for channel in ROUTERS:
            rejected = after[channel]["rejected"] - before[channel]["rejected"]
            assert rejected == sent[channel], (channel, rejected, sent[channel])
            # a message whose signature failed is never answered (that would help a forger)
            assert not peer.drain(channel), f"{channel} answered a forgery"


def test_without_a_key_mutated_envelopes_are_answered_or_counted(
    node_thread: Callable[..., NodeThread],
) -> None:
    """Unsigned, a mutation often still decodes (a changed byte in content): then it is
    acted on and answered like any request; otherwise it is rejected and counted."""
    node = node_thread()
    peer = Peer(node, Codec(username="op"))
    sent = 0
    with valid_traffic_goes_on(node, peer) as stream:
        before = wait_counted(peer, {})

        @fuzz
        @given(change=mutation())
        def attack(change: tuple[int, Callable[[list[bytes]], list[bytes]]]) -> None:
            nonlocal sent
            kind, mutate = change
            if kind == 5:
                kind = 0  # input_reply only means something on stdin
            peer.dealer("shell").send_multipart(mutate(_valid_request(peer.codec, kind)))
            sent += 1
            stream.collect()

        attack()
        after = wait_counted(peer, {"shell": before["shell"]["messages_in"] + sent})
        rejected = after["shell"]["rejected"] - before["shell"]["rejected"]
        accepted = sent - rejected
        replies = peer.drain("shell")
        deadline = time.monotonic() + 5
        while len(replies) < accepted and peer.dealer("shell").poll(
            max(1, int((deadline - time.monotonic()) * 1000))
        ):
            replies += peer.drain("shell")
        # every accepted request was answered (rejected ones with a readable header too)
        assert len(replies) >= accepted, (len(replies), accepted, rejected, sent)
        assert rejected > 0  # both paths were exercised
        assert accepted > 0


def test_forged_unsigned_and_replayed_are_all_rejected_on_every_channel(
    node_thread: Callable[..., NodeThread],
) -> None:
    node = node_thread(signed=True)
    key = node.system.hmac_key()
    peer = Peer(node, Codec(key, username="op"))
    forger = Codec(b"not the key", username="forger")
    unsigned = Codec(username="nokey")
    each = 50
    try:
        before = wait_counted(peer, {})
        for channel in ROUTERS:
            sock = peer.dealer(channel)
            kind = "input_reply" if channel == "stdin" else "kernel_info_request"
            for _ in range(each):
                sock.send_multipart(forger.encode(forger.message(kind, {})))
                sock.send_multipart(unsigned.encode(unsigned.message(kind, {})))
            good = peer.codec.encode(peer.codec.message(kind, {}))
            for _ in range(each + 1):  # the first is genuine, the rest replays
                sock.send_multipart(good)
        expected_in = {ch: before[ch]["messages_in"] + 3 * each + 1 for ch in ROUTERS}
        after = wait_counted(peer, expected_in)
        for channel in ROUTERS:
            rejected = after[channel]["rejected"] - before[channel]["rejected"]
            assert rejected == 3 * each, (channel, rejected)
            replies = peer.drain(channel)
            assert len(replies) == (0 if channel == "stdin" else 1), (channel, len(replies))
        assert node.serving
    finally:
        peer.close()


def test_an_oversized_request_is_refused_by_the_socket(
    node_thread: Callable[..., NodeThread],
) -> None:
    limit = 64 * 1024
    node = node_thread(system_keys=f"max_message_size = {limit}")
    peer = Peer(node, Codec(username="op"))
    try:
        before = wait_counted(peer, {})
        big = peer.ctx.socket(zmq.DEALER)
        big.setsockopt(zmq.LINGER, 0)
        big.connect(node.endpoint("shell"))
        request = peer.codec.message("execute_request", {"code": "x" * (limit + 1)})
        big.send_multipart(peer.codec.encode(request))
        assert big.poll(1000) == 0, "the node answered a message over max_message_size"
        big.close()
        # the message never reached the node's code; the node serves everyone else
        after = wait_counted(peer, {})
        assert after["shell"]["messages_in"] == before["shell"]["messages_in"] + 1
        # just under the limit is read and answered (with an error: not a command)
        reply = peer.request("execute_request", {"code": "x" * (limit - 1024)})
        assert reply.content["status"] == "error"
        # hb: an oversized ping is not echoed
        hb = peer.ctx.socket(zmq.REQ)
        hb.setsockopt(zmq.LINGER, 0)
        hb.connect(node.endpoint("hb"))
        hb.send(b"x" * (limit + 1))
        assert hb.poll(500) == 0
        hb.close()
        assert node.serving
    finally:
        peer.close()


class Outer:
    """Blocking sockets on the outer side of a forwarder process."""

    def __init__(self, endpoints: Any) -> None:
        self.endpoints = endpoints
        self.ctx = zmq.Context()
        self.codec = Codec(username="op")

    def socket(self, kind: int, endpoint: str) -> tuple[zmq.Socket[bytes], zmq.Socket[bytes]]:
        """A socket connected to ``endpoint`` and its monitor (disconnections only)."""
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        monitor = sock.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        sock.connect(str(getattr(self.endpoints, endpoint)))
        return sock, monitor

    def request(self, endpoint: str, message: Message) -> Message:
        """``message`` from a new connection; its reply (within 10 s)."""
        sock, monitor = self.socket(zmq.DEALER, endpoint)
        try:
            sock.send_multipart(self.codec.encode(message))
            assert sock.poll(10_000), f"no reply to {message.msg_type}"
            return self.codec.decode(sock.recv_multipart())
        finally:
            monitor.close()
            sock.close()

    def stats(self) -> dict[str, Any]:
        reply = self.request("control", self.codec.message("stats_request"))
        assert reply.content["status"] == "ok", reply.content
        return reply.content

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def dropped(monitor: zmq.Socket[bytes], timeout: float = 10.0) -> None:
    """Until the peer closed the monitored socket's connection (ZMQ_MAXMSGSIZE does that)."""
    assert monitor.poll(int(timeout * 1000)), "the connection was not dropped"
    assert recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED


@pytest.fixture
def forwarder_limited(write_system, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Node alpha behind forwarder tether, as processes, ``max_message_size`` 64 KiB."""
    path = write_system(node_toml("alpha"), forwarder_toml("tether"))
    path.write_text(path.read_text().replace("[groups.vehicle]", LIMITED, 1))
    with running(path, tmp_path, ["alpha"], ["tether"]):
        outer = Outer(load_system(path).forwarder("tether").endpoints)
        yield outer
        outer.close()


LIMIT = 64 * 1024
LIMITED = f"max_message_size = {LIMIT}\n\n[groups.vehicle]"


def test_an_oversized_request_is_refused_by_the_forwarder(forwarder_limited: Outer) -> None:
    outer = forwarder_limited
    codec = outer.codec
    before = outer.stats()
    by_name = (b"alpha", b"shell")
    # over the limit, on the request endpoint and on the control endpoint: the socket
    # drops the connection, the forwarder's code never sees the message, no reply
    for endpoint, message in (
        ("request", codec.message("execute_request", {"code": "x" * LIMIT}, identities=by_name)),
        ("control", codec.message("stats_request", {"pad": "x" * LIMIT})),
    ):
        sock, monitor = outer.socket(zmq.DEALER, endpoint)
        sock.send_multipart(codec.encode(message))
        dropped(monitor)
        assert sock.poll(0) == 0, f"the forwarder answered an oversized message on {endpoint}"
        monitor.close()
        sock.close()
    after = outer.stats()
    assert after["requests"]["requests"] == before["requests"]["requests"]
    assert after["requests"]["rejected"] == before["requests"]["rejected"]
    assert after["control"]["messages_in"] == before["control"]["messages_in"] + 1
    # the forwarder and the node behind it serve everyone else, just under the limit too
    near = codec.message("execute_request", {"code": "x" * (LIMIT - 1024)}, identities=by_name)
    reply = outer.request("request", near)
    assert reply.content["ename"] == "CommandError"  # the node read it: not a command
    reply = outer.request("request", codec.message("node_info_request", identities=by_name))
    assert (reply.content["status"], reply.content["node"]) == ("ok", "alpha")


def test_an_oversized_subscription_is_refused_by_the_forwarder(forwarder_limited: Outer) -> None:
    outer = forwarder_limited
    codec = outer.codec
    hostile, monitor = outer.socket(zmq.SUB, "pub")
    hostile.setsockopt(zmq.SUBSCRIBE, b"alpha/" + b"x" * LIMIT)
    try:
        # refused by the XPUB (each time the subscriber reconnects): it never goes upstream,
        # where each node's PUB, bounded the same, would drop the XSUB's connection for it
        # and cut the pub path for every subscriber outside
        dropped(monitor)
        prefixes = outer.stats()["pub"]["prefixes"]
        assert not any(len(p) > LIMIT for p in prefixes), [p[:20] for p in prefixes]
        sub, sub_monitor = outer.socket(zmq.SUB, "pub")
        sub.setsockopt(zmq.SUBSCRIBE, b"alpha/hb")
        seqs: list[int] = []
        while len(seqs) < 6:
            assert sub.poll(5000), "no heartbeat of alpha through the forwarder"
            beat = codec.decode(sub.recv_multipart())
            seqs.append(beat.content["seq"])
        # after the first (the last-value cache's), heartbeats in a row: none missed
        live = sorted(set(seqs[1:]))
        assert len(live) >= 4, seqs
        assert live == list(range(live[0], live[0] + len(live))), seqs
        assert sub_monitor.poll(0) == 0  # nobody else was disconnected
        sub_monitor.close()
        sub.close()
    finally:
        monitor.close()
        hostile.close()


REFUSED: list[tuple[str, Any]] = [
    ("outside tx_allow", {"id": 0x050, "data": b"\x01"}),
    ("outside tx_allow, extended", {"id": 0x1000, "ext": True, "data": b"\x01"}),
    ("11-bit ID above 0x7FF", {"id": 0x800, "ext": False, "data": b"\x01"}),
    ("29-bit ID above 0x1FFFFFFF", {"id": 0x20000000, "ext": True, "data": b""}),
    ("negative ID", {"id": -1, "data": b""}),
    ("ID not an integer", {"id": "0x123", "data": b""}),
    ("9 bytes on classic CAN", {"id": 0x123, "data": bytes(9), "dlc": 9}),
    ("65 bytes", {"id": 0x123, "data": bytes(65), "dlc": 65, "fd": True}),
    ("dlc above 8", {"id": 0x123, "data": bytes(8), "dlc": 9}),
    ("dlc below the data", {"id": 0x123, "data": bytes(8), "dlc": 3}),
    ("negative dlc", {"id": 0x123, "data": b"", "dlc": -2}),
    ("data not bytes", {"id": 0x123, "data": "abc"}),
    ("error frame", {"id": 0x123, "data": b"", "err": True}),
    ("FD frame on a classic bus", {"id": 0x123, "data": bytes(12), "dlc": 12, "fd": True}),
    ("another bus", {"bus": "can9", "id": 0x123, "data": b""}),
    ("cansend: ID too long", "1234#00"),
    ("cansend: 9 data bytes", "123#000102030405060708"),
    ("cansend: not hex", "12G#00"),
    ("cansend: FD frame on a classic bus", "123##0001122"),
    ("not a frame", 42),
]


@pytest.mark.parametrize(("why", "frame"), REFUSED, ids=[w for w, _ in REFUSED])
def test_can_send_refusals_reach_nothing(
    node_thread: Callable[..., NodeThread], why: str, frame: Any
) -> None:
    node = node_thread(tx_allow='["0x100-0x7FF", "0x18FF0000-0x18FFFFFF"]')
    peer = Peer(node, Codec(username="op"))
    observer = can.Bus(interface="virtual", channel=node.daemon.config.bus("can0").channel)
    try:
        reply = peer.request("can_send_request", {"bus": "can0", "frames": [frame]})
        assert reply.content["status"] == "error", (why, reply.content)
        assert reply.content["evalue"], why
        assert observer.recv(timeout=0.2) is None, f"{why}: a frame reached the bus"
        # a valid frame in the same request as a bad one: the request is refused whole
        good = {"id": 0x124, "data": b"\x01"}
        reply = peer.request("can_send_request", {"bus": "can0", "frames": [good, frame]})
        assert reply.content["status"] == "error"
        assert observer.recv(timeout=0.2) is None, f"{why}: part of a refused request was sent"
        # and the observer does see what the node may send
        reply = peer.request("can_send_request", {"bus": "can0", "frames": [good]})
        assert reply.content["status"] == "ok"
        got = observer.recv(timeout=2)
        assert got is not None
        assert got.arbitration_id == 0x124
        assert node.serving
    finally:
        observer.shutdown()
        peer.close()
