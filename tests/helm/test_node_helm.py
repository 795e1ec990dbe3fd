"""The helm on a node in this process: who may send, the lease, the failsafe on the bus.

Every assertion about frames reads the bus (``Wire``); replies are read from raw pyzmq
peers, each a client of its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import zmq

from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from tests.helm.rig import FAILSAFE, Rig, failsafe, helm_frame
from tests.reliability.threads import Peer


def send(peer: Peer, *frames: str) -> Message:
    return peer.request("can_send_request", {"bus": "can0", "frames": list(frames)})


def control(peer: Peer, msg_type: str, **content: object) -> Message:
    return peer.request(msg_type, dict(content), channel="control")


def ok(reply: Message) -> Message:
    assert reply.content["status"] == "ok", reply.content
    return reply


def refused(reply: Message, ename: str, *fragments: str) -> None:
    assert reply.content["status"] == "error", reply.content
    assert reply.content["ename"] == ename, reply.content
    for fragment in fragments:
        assert fragment in reply.content["evalue"], reply.content["evalue"]


def test_the_node_writes_the_failsafe_frames_at_start_and_no_one_holds_the_helm(
    helm_rig: Callable[..., Rig],
) -> None:
    rig = helm_rig()
    rig.wire.all_failsafe_seen()
    status = ok(control(rig.peer("op"), "helm_status_request")).content["buses"]["can0"]
    assert status["holder"] is None
    assert status["failsafe_active"] is True
    assert status["reason"] == "node started"


def test_without_the_helm_helm_ids_are_refused_and_other_ids_and_stop_frames_pass(
    helm_rig: Callable[..., Rig],
) -> None:
    rig = helm_rig()
    op = rig.peer("op")
    rig.wire.all_failsafe_seen()
    refused(send(op, "203#E803"), "HelmRefused", "0x203", "no one holds it", "rovbus helm prop")
    ok(send(op, "300#01"))  # not a helm ID
    ok(send(op, "210#01"))  # all-stop, a failsafe frame: never gated
    ok(send(op, "201#0000"))  # zero thrust, a failsafe frame
    after = rig.wire.wait(lambda s: s.id == 0x300)
    rig.wire.wait(lambda s: s.id == 0x210, after)
    assert not any(s.id == 0x203 for s in rig.wire.frames())


def test_one_holder_a_second_is_refused_naming_it_and_takes_over_with_force_and_a_reason(
    helm_rig: Callable[..., Rig],
) -> None:
    rig = helm_rig(lease_ms=60_000)
    alice, bob = rig.peer("alice"), rig.peer("bob")
    ok(control(alice, "helm_take_request", bus="can0"))
    ok(send(alice, "202#E803"))
    rig.wire.wait(lambda s: s.id == 0x202 and s.data == b"\xe8\x03")
    refused(control(bob, "helm_take_request"), "HelmRefused", "held by alice")
    refused(send(bob, "202#0000"), "HelmRefused", "held by alice")
    refused(control(bob, "helm_take_request", force=True), "ValueError", "reason")
    reply = ok(control(bob, "helm_take_request", force=True, reason="alice's laptop froze"))
    assert reply.content["buses"]["can0"]["holder"] == "bob"
    refused(send(alice, "202#E803"), "HelmLost", "taken over by bob", "alice's laptop froze")
    refused(control(alice, "helm_renew_request"), "HelmLost", "taken over by bob")
    ok(send(bob, "202#F401"))
    rig.wire.wait(lambda s: s.id == 0x202 and s.data == b"\xf4\x01")


def test_the_lease_runs_out_without_helm_frames_the_failsafe_reaches_the_bus_and_the_holder_is_told(
    helm_rig: Callable[..., Rig],
) -> None:
    rig = helm_rig(lease_ms=200)
    op = rig.peer("op")
    start = rig.wire.wait_failsafe()
    ok(control(op, "helm_take_request"))
    ok(send(op, "201#E803"))
    command = rig.wire.wait(lambda s: s.id == 0x201 and s.data == b"\xe8\x03", start)
    first = rig.wire.wait_failsafe(command)  # nothing renews it: the lease runs out
    assert not any(helm_frame(s) for s in rig.wire.frames()[first:])
    refused(send(op, "201#E803"), "HelmLost", "lease ran out", "200 ms")
    status = ok(control(op, "helm_status_request")).content["buses"]["can0"]
    assert (status["holder"], status["failsafe_active"]) == (None, True)


def test_explicit_renewals_keep_the_helm_and_stopping_them_lets_the_lease_run_out(
    helm_rig: Callable[..., Rig],
) -> None:
    rig = helm_rig(lease_ms=200)
    op = rig.peer("op")
    rig.wire.all_failsafe_seen()
    ok(control(op, "helm_take_request"))
    ok(send(op, "201#E803"))
    command = rig.wire.wait(lambda s: s.id == 0x201 and s.data == b"\xe8\x03")
    renewed_until = time.monotonic() + 0.8  # four leases, each renewal a round trip
    while time.monotonic() < renewed_until:
        ok(control(op, "helm_renew_request"))
    assert not any(failsafe(s) for s in rig.wire.frames()[command:]), "renewals did not hold"
    assert ok(control(op, "helm_status_request")).content["buses"]["can0"]["holder"] == "op"
    rig.wire.wait_failsafe(command)


def test_release_writes_the_failsafe(helm_rig: Callable[..., Rig]) -> None:
    rig = helm_rig(lease_ms=60_000)
    op = rig.peer("op")
    ok(control(op, "helm_take_request"))
    ok(send(op, "200#E803"))
    command = rig.wire.wait(lambda s: s.id == 0x200 and s.data == b"\xe8\x03")
    reply = ok(control(op, "helm_release_request"))
    assert reply.content["released"] == ["can0"]
    rig.wire.wait_failsafe(command)
    rig.wire.all_failsafe_seen(command)
    refused(send(op, "200#E803"), "HelmRefused", "no one holds it")


def test_after_the_first_failsafe_frame_no_queued_helm_frame_reaches_the_bus(
    helm_rig: Callable[..., Rig],
) -> None:
    # a busy bus (2 ms a frame) and 400 setpoints queued: the release comes while most
    # of them wait in the node's transmit queue
    rig = helm_rig(lease_ms=60_000, slow=0.002)
    op = rig.peer("op")
    rig.wire.all_failsafe_seen()
    ok(control(op, "helm_take_request"))
    sock = op.dealer("shell")
    burst = op.codec.message(
        "can_send_request", {"bus": "can0", "frames": [f"20{i % 8}#E803" for i in range(400)]}
    )
    sock.send_multipart(op.codec.encode(burst))
    rig.wire.wait(helm_frame)  # the queue is draining
    ok(control(op, "helm_release_request"))
    first = rig.wire.wait_failsafe(rig.wire.wait(helm_frame))
    rig.wire.all_failsafe_seen(first)
    frames = rig.wire.frames()
    assert sum(helm_frame(s) for s in frames) < 400, "the queue was not full when released"
    assert not [s for s in frames[first:] if helm_frame(s)], "a helm frame after the failsafe"


def test_stop_from_anyone_writes_the_failsafe_and_the_holder_loses_the_helm(
    helm_rig: Callable[..., Rig],
) -> None:
    rig = helm_rig(lease_ms=60_000)
    holder, other = rig.peer("pilot"), rig.peer("deckhand")
    ok(control(holder, "helm_take_request"))
    ok(send(holder, "201#E803"))
    command = rig.wire.wait(lambda s: s.id == 0x201 and s.data == b"\xe8\x03")
    ok(control(other, "stop_request", reason="diver in the water"))
    rig.wire.all_failsafe_seen(command)
    refused(send(holder, "201#E803"), "HelmLost", "stop by deckhand", "diver in the water")


def test_tx_off_writes_the_failsafe_before_the_bus_goes_quiet_and_tx_on_writes_it_again(
    helm_rig: Callable[..., Rig],
) -> None:
    rig = helm_rig(lease_ms=60_000)
    op = rig.peer("op")
    ok(control(op, "helm_take_request"))
    ok(send(op, "201#E803"))
    command = rig.wire.wait(lambda s: s.id == 0x201 and s.data == b"\xe8\x03")
    ok(control(op, "tx_off_request", reason="leak alarm"))
    rig.wire.all_failsafe_seen(command)
    refused(send(op, "201#E803"), "HelmLost", "transmit turned off by op")
    quiet = len(rig.wire.frames())
    ok(control(op, "tx_on_request", reason="leak checked"))
    rig.wire.all_failsafe_seen(quiet)


def test_the_failsafe_repeats_while_no_one_holds_the_helm_and_stops_when_taken(
    helm_rig: Callable[..., Rig],
) -> None:
    rig = helm_rig(lease_ms=60_000, repeat_ms=50)
    op = rig.peer("op")
    first = rig.wire.wait_failsafe()
    rig.wire.wait(lambda s: s.id == 0x210, rig.wire.wait(lambda s: s.id == 0x210, first) + 1)
    ok(control(op, "helm_take_request"))
    ok(send(op, "201#E803"))
    command = rig.wire.wait(lambda s: s.id == 0x201 and s.data == b"\xe8\x03")
    for _ in range(5):
        ok(control(op, "helm_renew_request"))
    ok(send(op, "202#E803"))
    last = rig.wire.wait(lambda s: s.id == 0x202 and s.data == b"\xe8\x03", command)
    assert not any(failsafe(s) for s in rig.wire.frames()[command:last])


def test_a_replayed_or_forged_renewal_is_refused_with_signing_on(
    helm_rig: Callable[..., Rig],
) -> None:
    rig = helm_rig(lease_ms=300, signed=True)
    holder = rig.peer("pilot")
    ok(control(holder, "helm_take_request"))
    ok(send(holder, "201#E803"))
    command = rig.wire.wait(lambda s: s.id == 0x201 and s.data == b"\xe8\x03")
    sock = holder.dealer("control")
    renewal = holder.codec.message("helm_renew_request", {})
    captured = holder.codec.encode(renewal)
    sock.send_multipart(captured)
    assert sock.poll(5000), "the holder's own renewal got no reply"
    assert holder.codec.decode(sock.recv_multipart()).content["status"] == "ok"
    # an attacker on the tether replays it, and forges one as the holder's session
    attacker = Codec(b"not-the-key", username="pilot", session=holder.codec.session)
    forged = attacker.encode(attacker.message("helm_renew_request", {}))
    raw = holder.ctx.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(rig.node.endpoint("control"))
    try:
        until_failsafe = time.monotonic() + 5
        while not any(failsafe(s) for s in rig.wire.frames()[command:]):
            assert time.monotonic() < until_failsafe, "the lease held on replays and forgeries"
            raw.send_multipart(captured)
            raw.send_multipart(forged)
            time.sleep(0.02)  # the attacker's pace, not a wait
        assert not raw.poll(200), "the node answered a replayed or forged renewal"
    finally:
        raw.close()
    refused(control(holder, "helm_renew_request"), "HelmLost", "lease ran out")


def test_the_consoles_send_is_gated_like_can_send(helm_rig: Callable[..., Rig]) -> None:
    rig = helm_rig(lease_ms=60_000)
    op = rig.peer("op")
    rig.wire.all_failsafe_seen()
    reply = op.request("execute_request", {"code": "send can0 203#E803"})
    refused(reply, "CommandError", "needs the helm of prop/can0 and no one holds it")
    ok(control(op, "helm_take_request"))
    ok(op.request("execute_request", {"code": "send can0 203#E803"}))
    rig.wire.wait(lambda s: s.id == 0x203)


def test_failsafe_frames_say_why_in_the_transmit_log_and_the_holder_s_frames_name_it(
    helm_rig: Callable[..., Rig],
) -> None:
    rig = helm_rig(lease_ms=60_000)
    alice = rig.peer("alice")
    ok(control(alice, "helm_take_request", bus="can0"))
    setpoint = ok(send(alice, "202#E803"))
    ok(control(alice, "helm_release_request", bus="can0"))
    after = rig.wire.wait(lambda s: s.id == 0x202 and s.data == b"\xe8\x03")
    rig.wire.wait(failsafe, after)
    logged = ok(alice.request("tx_log_request", {"bus": "can0"})).content["frames"]
    ours = [f for f in logged if f["origin"]["msg_id"] == setpoint.parent_header["msg_id"]]
    assert [(f["id"], f["origin"]["by"]) for f in ours] == [(0x202, "alice")]
    released = [f for f in logged if f["origin"].get("reason", "").startswith("failsafe: ")]
    assert {(f["id"], f["data"]) for f in released} >= FAILSAFE
    assert {f["origin"]["reason"] for f in released} == {
        "failsafe: node started",
        "failsafe: released by alice",
    }
    assert {f["origin"]["by"] for f in released} == {"prop"}
    assert all(f["origin"]["msg_id"] == "" for f in released)


def test_helm_requests_with_hostile_content_are_refused_naming_the_field_and_change_nothing(
    helm_rig: Callable[..., Rig],
) -> None:
    """Raw peers send what rovbus's client never would; the node answers each with an error
    and keeps the helm as it was: no holder, the failsafe active, still serving."""
    rig = helm_rig(lease_ms=60_000)
    op = rig.peer("op")
    rig.wire.all_failsafe_seen()
    for msg_type in ("helm_take_request", "helm_renew_request", "helm_release_request"):
        for bus in (["can0"], 7, {"can0": 1}, "x" * 10_000):
            refused(control(op, msg_type, bus=bus), "ValueError", "has no helm on bus")
    refused(control(op, "helm_take_request", reason=["why"]), "ValueError", "'reason' must be text")
    refused(control(op, "helm_take_request", reason="r" * 201), "ValueError", "at most 200")
    refused(control(op, "helm_renew_request"), "HelmRefused", "no one holds it")
    status = ok(control(op, "helm_status_request")).content["buses"]["can0"]
    assert (status["holder"], status["failsafe_active"]) == (None, True)
    refused(send(op, "203#E803"), "HelmRefused", "no one holds it")
    assert not any(helm_frame(s) for s in rig.wire.frames())
