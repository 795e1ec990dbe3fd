"""The node daemon in-process: CAN frames onto pub, requests, control, bad input."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import can
import pytest
import zmq

from rovbus.wire.canframe import CanFrame, frames_from_batch
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from rovbus.wire.serializers import Serializer
from tests.node.running import RunningNode, subscribed, wait_for


def peer_bus(node: RunningNode, bus: str = "can0") -> can.BusABC:
    """Another device on the node's virtual CAN bus."""
    return can.Bus(interface="virtual", channel=node.daemon.config.bus(bus).channel)


async def test_received_frames_are_published_unchanged(start_node) -> None:
    node = await start_node()
    sub = await subscribed(node, "alpha/can/can0/")
    sent = [
        can.Message(arbitration_id=0x123, data=b"\xde\xad\xbe\xef", is_extended_id=False),
        can.Message(arbitration_id=0x18FEF100, data=bytes(range(8)), is_extended_id=True),
        can.Message(arbitration_id=0x7FF, is_remote_frame=True, dlc=4, is_extended_id=False),
    ]
    with peer_bus(node) as device:
        for msg in sent:
            device.send(msg)
        got = [await wait_for(sub, lambda m: m.msg_type == "can_frame") for _ in sent]
    sub.close()
    assert [m.topic for m in got] == [
        "alpha/can/can0/123",
        "alpha/can/can0/18FEF100",
        "alpha/can/can0/7FF",
    ]
    frames = [CanFrame.from_content(m.content) for m in got]
    assert [(f.arbitration_id, f.data, f.is_remote_frame, f.dlc) for f in frames] == [
        (0x123, b"\xde\xad\xbe\xef", False, 4),
        (0x18FEF100, bytes(range(8)), False, 8),
        (0x7FF, b"", True, 4),
    ]
    assert all(f.direction == "rx" and f.bus == "can0" and f.timestamp > 0 for f in frames)


async def test_batched_bus_publishes_can_batch(start_node) -> None:
    node = await start_node(batch="{ max_frames = 10, max_delay_ms = 50.0 }")
    sub = await subscribed(node, "alpha/can/can0")
    with peer_bus(node) as device:
        for i in range(25):
            device.send(
                can.Message(arbitration_id=0x100 + i, data=bytes([i]), is_extended_id=False)
            )
        frames: list[CanFrame] = []
        while len(frames) < 25:
            msg = await wait_for(sub, lambda m: m.msg_type == "can_batch")
            assert msg.topic == "alpha/can/can0"
            frames += frames_from_batch(msg.content)
    sub.close()
    assert [f.arbitration_id for f in frames] == [0x100 + i for i in range(25)]
    assert [f.data for f in frames] == [bytes([i]) for i in range(25)]


async def test_kernel_info_and_node_info(start_node) -> None:
    node = await start_node()
    info = await node.request("kernel_info_request")
    assert info.msg_type == "kernel_info_reply"
    assert info.content["implementation"] == "rovbus"
    assert info.content["protocol_version"] == "5.3"
    assert "alpha" in info.content["banner"]
    ninfo = await node.request("node_info_request")
    assert ninfo.content["node"] == "alpha"
    assert [b["name"] for b in ninfo.content["buses"]] == ["can0"]
    assert ninfo.content["buses"][0]["state"] == "ok"
    assert ninfo.content["session"] == node.daemon.codec.session


async def test_can_send_goes_onto_the_bus_and_is_published_as_tx(start_node) -> None:
    node = await start_node()
    sub = await subscribed(node, "alpha/can/can0/")
    with peer_bus(node) as device:
        reply = await node.request(
            "can_send_request",
            {"bus": "can0", "frames": ["123#DEADBEEF", {"id": 0x124, "data": b"\x01\x02"}]},
        )
        assert reply.content == {"status": "ok", "bus": "can0", "sent": 2}
        on_wire = [device.recv(timeout=2), device.recv(timeout=2)]
    assert [(m.arbitration_id, bytes(m.data)) for m in on_wire] == [
        (0x123, b"\xde\xad\xbe\xef"),
        (0x124, b"\x01\x02"),
    ]
    published = [await wait_for(sub, lambda m: m.msg_type == "can_frame") for _ in range(2)]
    sub.close()
    assert [m.content["dir"] for m in published] == ["tx", "tx"]
    assert [m.content["id"] for m in published] == [0x123, 0x124]


async def test_can_send_outside_the_allow_list_sends_nothing(start_node) -> None:
    node = await start_node(tx_allow='["0x200-0x20F"]')
    with peer_bus(node) as device:
        reply = await node.request(
            "can_send_request", {"bus": "can0", "frames": ["201#01", "300#02"]}
        )
        assert reply.content["status"] == "error"
        assert "frame 1" in reply.content["evalue"]
        assert "300" in reply.content["evalue"]
        assert device.recv(timeout=0.3) is None


async def test_bad_frame_text_names_the_frame(start_node) -> None:
    node = await start_node()
    reply = await node.request("can_send_request", {"bus": "can0", "frames": ["123#00", "12G#00"]})
    assert reply.content["status"] == "error"
    assert reply.content["evalue"].startswith("frame 1")
    reply = await node.request("can_send_request", {"bus": "nope", "frames": ["123#00"]})
    assert "nope" in reply.content["evalue"]


async def test_requests_have_busy_then_idle_status_parented_to_them(start_node) -> None:
    node = await start_node()
    sub = await subscribed(node, "alpha/status")
    request = node.codec.message("stats_request", {})
    req = node.requester()
    reply = await req.request(request, timeout=5)
    req.close()
    states = []
    while len(states) < 2:
        msg = await wait_for(sub, lambda m: m.msg_type == "status")
        if msg.parent_header.get("msg_id") == request.msg_id:
            states.append(msg.content["execution_state"])
    sub.close()
    assert states == ["busy", "idle"]
    assert reply.content["buses"]["can0"]["state"] == "ok"
    assert "shell" in reply.content["sockets"]


async def test_unknown_request_gets_a_jupyter_error_reply(start_node) -> None:
    node = await start_node()
    reply = await node.request("launch_torpedo_request")
    assert reply.msg_type == "launch_torpedo_reply"
    assert reply.content["status"] == "error"
    assert reply.content["ename"] == "UnknownRequest"
    assert "launch_torpedo_request" in reply.content["evalue"]
    # control does not answer shell requests either
    reply = await node.request("stats_request", channel="control")
    assert reply.content["status"] == "error"


async def test_tx_off_stops_transmission_until_tx_on(start_node) -> None:
    node = await start_node()
    sub = await subscribed(node, "alpha/status")
    off = await node.request("tx_off_request", channel="control")
    assert off.content == {"status": "ok", "tx_enabled": False}
    said = await wait_for(sub, lambda m: m.msg_type == "tx_status")
    assert said.content == {
        "tx_enabled": False,
        "reason": "",
        "by": "tester",
        "session": node.codec.session,
    }
    with peer_bus(node) as device:
        refused = await node.request("can_send_request", {"bus": "can0", "frames": ["123#01"]})
        assert refused.content["status"] == "error"
        assert device.recv(timeout=0.2) is None
        on = await node.request(
            "tx_on_request", {"reason": "  thrusters clear  "}, channel="control"
        )
        assert on.content == {"status": "ok", "tx_enabled": True}
        said = await wait_for(sub, lambda m: m.msg_type == "tx_status")
        assert said.content["tx_enabled"] is True
        assert said.content["reason"] == "thrusters clear"
        assert said.parent_header["msg_id"] == on.parent_header["msg_id"]
        ok = await node.request("can_send_request", {"bus": "can0", "frames": ["123#01"]})
        assert ok.content["sent"] == 1
        assert device.recv(timeout=2).arbitration_id == 0x123
    sub.close()


async def test_tx_on_needs_a_reason_and_tx_off_never_fails(start_node) -> None:
    node = await start_node()
    await node.request("tx_off_request", {"reason": 42}, channel="control")  # acts anyway
    for content in ({}, {"reason": ""}, {"reason": "   "}, {"reason": None}):
        refused = await node.request("tx_on_request", content, channel="control")
        assert refused.content["status"] == "error"
        assert refused.content["evalue"] == (
            "turning transmit on needs a reason: why it may go on again, in one line of text "
            "('reason'); the node logs it and publishes it on <node>/status with who asked"
        )
    for content, why in (
        ({"reason": 1}, "'reason' must be text, got int"),
        ({"reason": "x" * 201}, "'reason' has 201 characters; at most 200"),
        ({"reason": "ok\nFAKE LOG LINE"}, "'reason' must be one line of printable text"),
    ):
        refused = await node.request("tx_on_request", content, channel="control")
        assert refused.content["status"] == "error"
        assert refused.content["evalue"] == why
    info = await node.request("node_info_request")
    assert [bus["tx_enabled"] for bus in info.content["buses"]] == [False]
    on = await node.request("tx_on_request", {"reason": "y" * 200}, channel="control")
    assert on.content == {"status": "ok", "tx_enabled": True}  # 200 characters: the most


async def test_the_console_turns_transmit_off_and_on_on_every_bus_saying_who_and_why(
    start_node, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rovbus.node.daemon")
    node = await start_node(buses=("can0", "can1"))
    sub = await subscribed(node, "alpha/status")
    who = {"by": "tester", "session": node.codec.session}

    async def run(code: str) -> tuple[dict[str, Any], dict[str, Message]]:
        """The reply's content, and the request's side effects by type (up to idle)."""
        reply = await node.request("execute_request", {"code": code})
        request_id = reply.parent_header["msg_id"]
        effects: dict[str, Message] = {}
        while "status" not in effects or effects["status"].content["execution_state"] != "idle":
            said = await wait_for(sub, lambda m: m.parent_header.get("msg_id") == request_id)
            effects[said.msg_type] = said
        return reply.content, effects

    def tx_enabled() -> list[bool]:
        return [port.tx_enabled for port in node.daemon.ports.values()]

    content, said = await run("tx off")
    assert content["status"] == "ok"
    assert said["stream"].content["text"] == "transmission stopped on every bus of alpha\n"
    assert said["tx_status"].content == {"tx_enabled": False, "reason": "", **who}
    assert tx_enabled() == [False, False]
    for code, why in (
        ("tx", "usage: tx off [REASON] | tx on [REASON]"),
        ("tx sideways", "usage: tx off [REASON] | tx on [REASON]"),
        (
            "tx on",  # no reason, and this client cannot be asked for one (allow_stdin)
            "tx on needs a reason: type 'tx on REASON', or use a client that allows input "
            "(allow_stdin) to be asked for one",
        ),
        ("tx on 'ok\x07'", "tx on: 'reason' must be one line of printable text"),
        (
            "tx on '   '",  # a reason of blanks is none
            "tx on: turning transmit on needs a reason: why it may go on again, in one line "
            "of text ('reason'); the node logs it and publishes it on <node>/status with who "
            "asked",
        ),
    ):
        content, said = await run(code)
        assert (content["status"], content["evalue"]) == ("error", why)
        assert "tx_status" not in said
    assert tx_enabled() == [False, False]
    content, said = await run("tx on  thrusters   clear ")
    assert said["stream"].content["text"] == (
        "transmission enabled on every bus of alpha: thrusters clear\n"
    )
    assert said["tx_status"].content == {"tx_enabled": True, "reason": "thrusters clear", **who}
    assert tx_enabled() == [True, True]
    content, said = await run("tx off water ingress")
    assert said["tx_status"].content == {"tx_enabled": False, "reason": "water ingress", **who}
    content, said = await run("tx off 'two\nlines'")  # stops anyway, without the reason
    assert said["tx_status"].content == {"tx_enabled": False, "reason": "", **who}
    logged = [r.getMessage() for r in caplog.records if r.name == "rovbus.node.daemon"]
    session = node.codec.session
    assert logged == [
        f"alpha: transmit off, asked by tester (session {session}): no reason given "
        "(0 more not logged)",
        f"alpha: transmit on, asked by tester (session {session}): thrusters clear "
        "(0 more not logged)",
    ]  # the second "off" within 30 s of the first: counted, not logged
    sub.close()


async def test_repeated_msg_id_is_answered_once(start_node) -> None:
    node = await start_node()
    request = node.codec.message("can_send_request", {"bus": "can0", "frames": ["123#01"]})
    with peer_bus(node) as device:
        # the same msg_id twice, from two sockets, as a retry after a lost reply sends it
        first_req, retry = node.requester(), node.requester()
        first = await first_req.request(request, timeout=5)
        again = await retry.request(request, timeout=5)
        first_req.close()
        retry.close()
        assert first.content == again.content == {"status": "ok", "bus": "can0", "sent": 1}
        assert device.recv(timeout=2) is not None
        assert device.recv(timeout=0.3) is None  # sent once, not twice


async def test_malformed_input_is_counted_and_the_node_goes_on(start_node) -> None:
    node = await start_node()
    sock = node.ctx.socket(zmq.DEALER)
    sock.connect(str(node.daemon.config.endpoints.shell))
    junk = [[b"garbage"], [b"<IDS|MSG>", b"", b"\xc1"], [b"<IDS|MSG>", b"", b"{}", b"{}", b"{}"]]
    for frames in junk:
        await sock.send_multipart(frames)
    # a readable header with unreadable content gets an error reply
    codec = Codec()
    good_header = codec.encode(codec.message("stats_request"))
    await sock.send_multipart([*good_header[:5], b"{}", b"\xc1"])
    reply = codec.decode(await asyncio.wait_for(sock.recv_multipart(), 5))
    sock.close(linger=0)
    assert reply.content["status"] == "error"
    assert reply.content["ename"] == "EnvelopeError"
    stats = await node.request("stats_request")
    assert stats.content["sockets"]["shell"]["rejected"] == len(junk) + 1


async def test_heartbeats_carry_sequence_session_and_bus_state(start_node) -> None:
    node = await start_node()
    sub = await subscribed(node)
    beats = [await wait_for(sub, lambda m: m.msg_type == "heartbeat") for _ in range(3)]
    sub.close()
    seqs = [b.content["seq"] for b in beats]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    assert {b.content["session"] for b in beats} == {node.daemon.codec.session}
    assert beats[-1].content["buses"]["can0"]["state"] == "ok"
    assert beats[-1].topic == "alpha/hb"


async def test_shutdown_request_stops_serving(start_node) -> None:
    node = await start_node()
    reply = await node.request("shutdown_request", {"restart": False}, channel="control")
    assert reply.content == {"status": "ok", "restart": False}
    await asyncio.wait_for(node.task, 5)


async def test_requests_are_answered_in_the_serializer_they_came_in(start_node) -> None:
    node = await start_node()
    req = node.requester()
    try:
        for serializer in (Serializer.JSON, Serializer.MSGPACK):
            request = node.codec.message("kernel_info_request", serializer=serializer)
            reply = await req.request(request, timeout=5)
            assert reply.serializer is serializer
            assert reply.content["implementation"] == "rovbus"
    finally:
        req.close()
