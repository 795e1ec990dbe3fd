"""Provenance: each frame a node transmits names the request behind it (who, which, when),
in the tx frames it publishes and in its bounded transmit log (``tx_log_request``)."""

from __future__ import annotations

import time

import can

from rovbus.transport import Requester
from rovbus.wire.canframe import frames_from_batch
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from tests.node.running import RunningNode, subscribed, wait_for


def peer_bus(node: RunningNode, bus: str = "can0") -> can.BusABC:
    return can.Bus(interface="virtual", channel=node.daemon.config.bus(bus).channel)


async def request_as(node: RunningNode, codec: Codec, msg_type: str, content: dict) -> Message:
    """``msg_type`` sent with ``codec`` (its username), answered; the reply is checked ok."""
    req = Requester(node.ctx, str(node.daemon.config.endpoints.shell), codec)
    try:
        message = codec.message(msg_type, content)
        reply = await req.request(message, timeout=5)
    finally:
        req.close()
    assert reply.content["status"] == "ok", reply.content
    assert reply.parent_header["msg_id"] == message.msg_id
    return reply


def traced(content: dict) -> tuple[int, str, str, str]:
    """(ID, username, msg_id, session) of a tx frame's content."""
    origin = content["origin"]
    return content["id"], origin["by"], origin["msg_id"], origin["session"]


async def test_frames_from_two_clients_each_name_their_request_and_user(start_node) -> None:
    node = await start_node()
    sub = await subscribed(node, "alpha/can/can0/")
    alice, bob = Codec(username="alice"), Codec(username="bob")
    before = time.time()
    with peer_bus(node) as device:
        a = await request_as(node, alice, "can_send_request", {"bus": "can0", "frames": ["123#01"]})
        b = await request_as(
            node, bob, "can_send_request", {"bus": "can0", "frames": ["124#02", "125#03"]}
        )
        assert [device.recv(timeout=2).arbitration_id for _ in range(3)] == [0x123, 0x124, 0x125]
    after = time.time()
    expected = [
        (0x123, "alice", a.parent_header["msg_id"], alice.session),
        (0x124, "bob", b.parent_header["msg_id"], bob.session),
        (0x125, "bob", b.parent_header["msg_id"], bob.session),
    ]
    published = [
        await wait_for(sub, lambda m: m.msg_type == "can_frame" and m.content["dir"] == "tx")
        for _ in range(3)
    ]
    sub.close()
    assert [traced(m.content) for m in published] == expected
    assert all(before <= m.content["origin"]["at"] <= after for m in published)

    log = await node.request("tx_log_request", {})
    assert log.content["logged"] == 3
    assert log.content["size"] == 1000
    assert [traced(frame) for frame in log.content["frames"]] == expected
    newest = await node.request("tx_log_request", {"bus": "can0", "limit": 1})
    assert [traced(frame) for frame in newest.content["frames"]] == expected[-1:]


async def test_received_frames_carry_no_origin_and_stay_out_of_the_log(start_node) -> None:
    node = await start_node()
    sub = await subscribed(node, "alpha/can/can0/")
    with peer_bus(node) as device:
        device.send(can.Message(arbitration_id=0x321, data=b"\x01", is_extended_id=False))
        received = await wait_for(sub, lambda m: m.msg_type == "can_frame")
    sub.close()
    assert received.content["dir"] == "rx"
    assert "origin" not in received.content
    log = await node.request("tx_log_request", {})
    assert log.content["frames"] == []
    assert log.content["logged"] == 0


async def test_the_console_send_names_the_execute_request(start_node) -> None:
    node = await start_node()
    operator = Codec(username="carol")
    with peer_bus(node) as device:
        reply = await request_as(node, operator, "execute_request", {"code": "send can0 126#04"})
        assert device.recv(timeout=2).arbitration_id == 0x126
    log = await node.request("tx_log_request", {})
    assert [traced(frame) for frame in log.content["frames"]] == [
        (0x126, "carol", reply.parent_header["msg_id"], operator.session)
    ]


async def test_the_log_stays_bounded_under_a_flood(start_node) -> None:
    node = await start_node(tx_log=8)
    flooder = Codec(username="x" * 100_000)  # a header as large as a client likes
    with peer_bus(node) as device:
        for i in range(10):
            frames = [f"{0x100 + i:03X}#{j:02X}" for j in range(5)]
            await request_as(node, flooder, "can_send_request", {"bus": "can0", "frames": frames})
        for _ in range(50):
            device.recv(timeout=2)
    log = await node.request("tx_log_request", {})
    frames = log.content["frames"]
    assert log.content["logged"] == 50
    assert log.content["size"] == 8
    assert [(f["id"], f["data"]) for f in frames] == [(0x108, bytes([j])) for j in range(2, 5)] + [
        (0x109, bytes([j])) for j in range(5)
    ]
    assert {len(f["origin"]["by"]) for f in frames} == {64}
    assert len(node.daemon.tx_log.last()) == 8


async def test_tx_log_request_names_a_bad_bus_or_limit(start_node) -> None:
    node = await start_node()
    for content, words in (
        ({"bus": "can9"}, "node alpha has no bus 'can9'; it has can0"),
        ({"limit": 0}, "'limit' must be a whole number of frames from 1 to 4096, got 0"),
        ({"limit": 4097}, "'limit' must be a whole number of frames from 1 to 4096, got 4097"),
        ({"limit": "all"}, "'limit' must be a whole number of frames from 1 to 4096"),
    ):
        reply = await node.request("tx_log_request", content)
        assert reply.content["status"] == "error"
        assert words in reply.content["evalue"]


async def test_a_batched_bus_publishes_each_request_origin_with_its_frames(start_node) -> None:
    node = await start_node(batch="{ max_frames = 16, max_delay_ms = 20 }")
    sub = await subscribed(node, "alpha/can/can0")
    alice = Codec(username="alice")
    reply = await request_as(
        node, alice, "can_send_request", {"bus": "can0", "frames": ["123#01", "124#02"]}
    )
    batch = await wait_for(
        sub,
        lambda m: (
            m.msg_type == "can_batch"
            and any(f.direction == "tx" for f in frames_from_batch(m.content))
        ),
    )
    sub.close()
    tx = [f for f in frames_from_batch(batch.content) if f.direction == "tx"]
    assert [
        (f.arbitration_id, f.origin and f.origin.by, f.origin and f.origin.msg_id) for f in tx
    ] == [
        (0x123, "alice", reply.parent_header["msg_id"]),
        (0x124, "alice", reply.parent_header["msg_id"]),
    ]


async def test_an_origin_written_in_the_request_frames_is_not_read(start_node) -> None:
    node = await start_node()
    mallory = Codec(username="mallory")
    forged = {"by": "captain", "msg_id": "m0", "at": 1.0}
    frames = [
        {"id": 0x127, "data": b"\x05", "origin": forged},
        {"id": 0x128, "data": b"\x06", "origin": "not even a map"},
    ]
    reply = await request_as(node, mallory, "can_send_request", {"bus": "can0", "frames": frames})
    log = await node.request("tx_log_request", {})
    assert [traced(frame) for frame in log.content["frames"]] == [
        (0x127, "mallory", reply.parent_header["msg_id"], mallory.session),
        (0x128, "mallory", reply.parent_header["msg_id"], mallory.session),
    ]
