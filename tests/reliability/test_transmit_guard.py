"""What a peer holding the key can make a node transmit, and who may turn transmit on.

Raw DEALER sockets send requests rovbus's client never would (issue 11, items 4 and 5):
a 29-bit frame whose number an 11-bit entry allows, frames on a bus that may send
nothing, ``tx_on_request`` without a reason, and answers on stdin to another client's
question. A python-can bus on the node's channel sees what reaches the wire.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import can
import pytest
import zmq

from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from tests.reliability.threads import NodeThread, Peer, collect, dealer


@pytest.fixture
def signed(node_thread: Callable[..., NodeThread]) -> Callable[..., tuple[NodeThread, Peer]]:
    """A node with a key, started with ``**node`` settings, and a peer holding the key."""

    def start(**node: Any) -> tuple[NodeThread, Peer]:
        thread = node_thread(signed=True, **node)
        return thread, Peer(thread, Codec(thread.system.hmac_key(), username="op"))

    return start


@pytest.fixture
def observer() -> Iterator[Callable[[NodeThread], can.BusABC]]:
    """Another device on the node's bus ``can0``: what it receives reached the wire."""
    buses: list[can.BusABC] = []

    def on(node: NodeThread) -> can.BusABC:
        bus = can.Bus(interface="virtual", channel=node.daemon.config.bus("can0").channel)
        buses.append(bus)
        return bus

    yield on
    for bus in buses:
        bus.shutdown()


def assert_refused(reply: Message, *fragments: str) -> None:
    assert reply.content["status"] == "error", reply.content
    for fragment in fragments:
        assert fragment in reply.content["evalue"], reply.content["evalue"]


def wait_taken_in(node: NodeThread, channel: str, count: int, timeout: float = 5.0) -> None:
    """Until the node has read ``count`` messages on ``channel`` (it handles each before
    reading the next)."""
    stats = node.daemon.channels[channel].stats
    deadline = time.monotonic() + timeout
    while stats.messages_in < count:
        assert time.monotonic() < deadline, f"{channel}: {stats.messages_in} of {count} read"
        time.sleep(0.01)


# -- item 4: the frame format --------------------------------------------------------------


def test_a_29_bit_id_is_refused_where_only_the_11_bit_id_is_allowed(
    signed: Callable[..., tuple[NodeThread, Peer]],
    observer: Callable[[NodeThread], can.BusABC],
) -> None:
    node, peer = signed(tx_allow='["0x200-0x20F"]')
    wire = observer(node)
    try:
        named = "29-bit (extended) ID 0x00000201 is not in the tx_allow list of 'can0'"
        for frame in ({"id": 0x201, "ext": True, "data": b"\x03"}, "00000201#03"):
            reply = peer.request("can_send_request", {"bus": "can0", "frames": [frame]})
            assert_refused(reply, "frame 0 refused", named, "the 11-bit ID 0x201 is allowed")
        reply = peer.request("execute_request", {"code": "send can0 0000020F#04"})
        assert_refused(reply, "29-bit (extended) ID 0x0000020F is not in the tx_allow list")
        # the same numbers as 11-bit IDs may go out: they are the first frames on the wire
        frames = [{"id": 0x201, "data": b"\x03"}, "20F#04"]
        reply = peer.request("can_send_request", {"bus": "can0", "frames": frames})
        assert reply.content == {"status": "ok", "bus": "can0", "sent": 2}
        got = [wire.recv(timeout=5) for _ in frames]
        assert [(m.arbitration_id, m.is_extended_id) for m in got if m] == [
            (0x201, False),
            (0x20F, False),
        ]
        assert node.serving
    finally:
        peer.close()


@pytest.mark.parametrize("tx_allow", ["[]", None], ids=["empty", "absent"])
def test_a_bus_without_tx_allow_sends_nothing(
    signed: Callable[..., tuple[NodeThread, Peer]],
    observer: Callable[[NodeThread], can.BusABC],
    tx_allow: str | None,
) -> None:
    node, peer = signed(tx_allow=tx_allow)
    wire = observer(node)
    try:
        for frame in ("000#01", "7FF#01", "00000000#01", "1FFFFFFF#01", {"id": 0x100}):
            reply = peer.request("can_send_request", {"bus": "can0", "frames": [frame]})
            assert_refused(reply, "tx_allow list of 'can0' (nothing)")
        reply = peer.request("execute_request", {"code": "send can0 123#01"})
        assert_refused(reply, "tx_allow list of 'can0' (nothing)")
        bus = peer.stats()["buses"]["can0"]
        assert (bus["tx"], bus["tx_queued"]) == (0, 0)
        assert wire.recv(timeout=0.2) is None
    finally:
        peer.close()


# -- item 5: turning transmit on --------------------------------------------------------


def test_tx_on_without_a_reason_is_refused_and_transmit_stays_off(
    signed: Callable[..., tuple[NodeThread, Peer]],
    observer: Callable[[NodeThread], can.BusABC],
) -> None:
    node, peer = signed()
    wire = observer(node)
    status = peer.subscriber("alpha/status", "alpha/hb")
    try:
        peer.wait_for(status, lambda m: m.msg_type == "heartbeat")
        off = peer.request("tx_off_request", {"reason": "leak alarm"}, channel="control")
        assert off.content == {"status": "ok", "tx_enabled": False}
        for content in ({}, {"force": True}, {"reason": ""}, {"reason": ["a", "b"]}):
            reply = peer.request("tx_on_request", content, channel="control")
            assert_refused(reply)
            assert "reason" in reply.content["evalue"]
        refused = peer.request("can_send_request", {"bus": "can0", "frames": ["123#01"]})
        assert_refused(refused, "transmit disabled")
        assert [b["tx_enabled"] for b in peer.request("node_info_request").content["buses"]] == [
            False
        ]
        # what the node said, in order: off (with who and why), then on
        on = peer.request("tx_on_request", {"reason": "leak checked"}, channel="control")
        assert on.content == {"status": "ok", "tx_enabled": True}
        said = [
            peer.wait_for(status, lambda m: m.msg_type == "tx_status").content for _ in range(2)
        ]
        who = {"by": "op", "session": peer.codec.session}
        assert said == [
            {"tx_enabled": False, "reason": "leak alarm", **who},
            {"tx_enabled": True, "reason": "leak checked", **who},
        ]
        reply = peer.request("can_send_request", {"bus": "can0", "frames": ["124#02"]})
        assert reply.content["status"] == "ok"
        first = wire.recv(timeout=5)  # nothing went out while transmit was off
        assert first is not None
        assert first.arbitration_id == 0x124
    finally:
        peer.close()


def asked_why(
    peer: Peer, shell: zmq.Socket[bytes], stdin: zmq.Socket[bytes]
) -> tuple[Message, Message]:
    """Send ``tx on`` allowing stdin on ``shell``; the request, and the node's question on
    ``stdin`` (the same identity)."""
    execute = peer.codec.message("execute_request", {"code": "tx on", "allow_stdin": True})
    shell.send_multipart(peer.codec.encode(execute))
    (question,) = collect(stdin, peer.codec, 1)
    assert question.msg_type == "input_request"
    return execute, question


def test_tx_on_asks_why_and_an_empty_answer_leaves_transmit_off(
    signed: Callable[..., tuple[NodeThread, Peer]],
) -> None:
    node, peer = signed()
    ep = node.daemon.config.endpoints
    shell, stdin = dealer(peer.ctx, ep.shell, b"op-1"), dealer(peer.ctx, ep.stdin, b"op-1")
    status = peer.subscriber("alpha/status", "alpha/hb")
    try:
        peer.wait_for(status, lambda m: m.msg_type == "heartbeat")
        peer.request("tx_off_request", channel="control")
        execute, question = asked_why(peer, shell, stdin)
        assert question.content == {
            "prompt": "Why may alpha transmit again on every bus? (logged and published with "
            "your name; empty: cancel) ",
            "password": False,
        }
        answer = peer.codec.message("input_reply", {"value": "   "}, parent=question)
        stdin.send_multipart(peer.codec.encode(answer))
        (reply,) = collect(shell, peer.codec, 1)
        assert reply.content["status"] == "ok", reply.content
        said = peer.wait_for(
            status, lambda m: m.msg_type == "stream" and m.parent_header == execute.header
        )
        assert said.content["text"] == "cancelled: transmission not changed\n"
        buses = peer.request("node_info_request").content["buses"]
        assert [bus["tx_enabled"] for bus in buses] == [False]
    finally:
        for sock in (shell, stdin):
            sock.close()
        peer.close()


def test_only_the_asking_client_answers_its_question_on_stdin(
    signed: Callable[..., tuple[NodeThread, Peer]],
) -> None:
    node, peer = signed()
    ep = node.daemon.config.endpoints
    ctx = peer.ctx
    shell, stdin = dealer(ctx, ep.shell, b"op-1"), dealer(ctx, ep.stdin, b"op-1")
    intruder = dealer(ctx, ep.stdin, b"intruder")
    other_session = Codec(node.system.hmac_key(), username="op")
    status = peer.subscriber("alpha/status", "alpha/hb")
    try:
        peer.wait_for(status, lambda m: m.msg_type == "heartbeat")
        peer.request("tx_off_request", channel="control")
        execute, question = asked_why(peer, shell, stdin)
        read = node.daemon.channels["stdin"].stats.messages_in
        answers = [
            # another DEALER, with the right parent, in the asker's session or its own
            (intruder, peer.codec.message("input_reply", {"value": "x1"}, parent=question)),
            (intruder, other_session.message("input_reply", {"value": "x2"}, parent=question)),
            (intruder, peer.codec.message("input_reply", {"value": "x3"})),  # as Jupyter
            # the asker's DEALER, in another session
            (stdin, other_session.message("input_reply", {"value": "x4"}, parent=question)),
        ]
        for sock, answer in answers:
            sock.send_multipart(peer.codec.encode(answer))
        wait_taken_in(node, "stdin", read + len(answers))
        answer = peer.codec.message("input_reply", {"value": "op says go"}, parent=question)
        stdin.send_multipart(peer.codec.encode(answer))
        (reply,) = collect(shell, peer.codec, 1)
        assert reply.parent_header["msg_id"] == execute.msg_id
        assert reply.content["status"] == "ok", reply.content
        said = peer.wait_for(
            status, lambda m: m.msg_type == "tx_status" and m.content["tx_enabled"]
        )
        assert said.content["reason"] == "op says go"
        assert said.parent_header["msg_id"] == execute.msg_id
        assert intruder.poll(0) == 0  # the node answered nothing to the intruder
        assert node.serving
    finally:
        for sock in (shell, stdin, intruder):
            sock.close()
        peer.close()
