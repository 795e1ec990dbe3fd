"""One boundary (vehicle -> topside), daemons as processes: pub-sub, late joiners, requests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from rovbus.wire.message import Message
from tests.forwarder.systems import Outside, System, system_running
from tests.helpers.systemfile import forwarder_toml, node_toml, system_toml
from tests.helpers.waiting import eventually
from tests.node.running import wait_for

ENVELOPE_PARTS = 7  # topic, delimiter, signature, four dict frames


@pytest.fixture(scope="module")
def tether(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp("tether")
    path = tmp / "system.toml"
    # a slow heartbeat, so that a heartbeat arriving at once can only come from the cache
    path.write_text(
        system_toml(node_toml("alpha"), node_toml("beta"), forwarder_toml("tether"), interval=3.0)
    )
    with system_running(path, tmp, ["alpha", "beta"], ["tether"]) as system:
        yield system


@pytest.fixture
async def outside(tether: System) -> Iterator[Outside]:  # type: ignore[misc]
    client = Outside(tether.config, "tether")
    yield client
    client.close()


async def send(outside: Outside, node: str, *frames: str) -> None:
    reply = await outside.request(node, "can_send_request", {"bus": "can0", "frames": list(frames)})
    assert reply.content["status"] == "ok", reply.content


async def pub_count(outside: Outside, node: str) -> int:
    reply = await outside.request(node, "stats_request")
    assert reply.content["status"] == "ok", reply.content
    count: int = reply.content["sockets"]["pub"]["messages_out"]
    return count


async def test_a_prefix_subscriber_gets_exactly_its_topics(outside: Outside) -> None:
    prefix = "alpha/can/can0/1"  # alpha's IDs 0x100-0x1FF
    sub = outside.subscriber(prefix)

    # the subscription is in force once a matching frame crosses
    async def crossed() -> bool:
        await send(outside, "alpha", "123#01")
        try:
            await wait_for(sub, lambda m: m.topic == f"{prefix}23", timeout=0.5)
        except TimeoutError:
            return False
        return True

    await eventually(crossed, what="the subscription to reach alpha")
    # a barrier: alpha's frames arrive in order, so once this one is here, all are
    await send(outside, "alpha", "125#02")
    await wait_for(sub, lambda m: m.topic == f"{prefix}25")

    before = await outside.stats()
    beta_before = await pub_count(outside, "beta")
    alpha_before = await pub_count(outside, "alpha")
    for _ in range(5):
        await send(outside, "alpha", "2AB#00", "2AC#00", "300#00", "7FF#00")
        await send(outside, "beta", "123#00", "1AA#00", "2AB#00")
    # both nodes did publish all of it (node counters) ...
    await eventually(
        lambda: _grew(outside, "beta", beta_before, 15), what="beta to publish its frames"
    )
    await eventually(
        lambda: _grew(outside, "alpha", alpha_before, 20), what="alpha to publish its frames"
    )
    await send(outside, "alpha", "1FF#AA")  # the marker, the one thing that matches
    got = await wait_for(sub, lambda m: True)
    assert got.topic == "alpha/can/can0/1FF"
    assert got.content["data"] == b"\xaa"

    after = await outside.stats()
    # ... and exactly one message crossed the boundary: the proxy's own counters
    parts_in = after["pub"]["inner_parts_in"] - before["pub"]["inner_parts_in"]
    parts_out = after["pub"]["outer_parts_out"] - before["pub"]["outer_parts_out"]
    assert (parts_in, parts_out) == (ENVELOPE_PARTS, ENVELOPE_PARTS)
    assert prefix in after["pub"]["prefixes"]
    assert after["pub"]["subscriptions"] >= 1
    with pytest.raises(TimeoutError):  # and nothing else is on its way
        await wait_for(sub, lambda m: True, timeout=0.3)


async def _grew(outside: Outside, node: str, before: int, by: int) -> bool:
    return await pub_count(outside, node) >= before + by


async def test_a_late_joiner_gets_every_heartbeat_at_once(outside: Outside) -> None:
    async def cached() -> bool:
        topics = (await outside.stats())["lvc"]["topics"]
        return {"alpha/hb", "beta/hb", "tether/hb"} <= set(topics)

    await eventually(cached, what="the forwarder to cache every heartbeat")
    before = (await outside.stats())["lvc"]["replayed"]
    # one cached entry per prefix, so the replay counter below proves all three were replayed
    joined = datetime.now(UTC)
    sub = outside.subscriber("alpha/hb", "beta/hb", "tether/hb")
    seen: dict[str, Message] = {}
    # a heartbeat made before this subscriber joined: only the cache can send it that
    async with asyncio.timeout(15):
        while len(seen) < 3:
            msg = await sub.recv()
            if msg.msg_type == "heartbeat" and datetime.fromisoformat(msg.header["date"]) < joined:
                seen[msg.topic] = msg
    assert set(seen) == {"alpha/hb", "beta/hb", "tether/hb"}
    assert seen["tether/hb"].content["kind"] == "forwarder"
    assert seen["tether/hb"].content["nodes"] == ["alpha", "beta"]
    assert (await outside.stats())["lvc"]["replayed"] >= before + 3


async def test_requests_reach_every_node_by_name(outside: Outside) -> None:
    for node in ("alpha", "beta"):
        info = await outside.request(node, "node_info_request")
        assert info.msg_type == "node_info_reply"
        assert info.content["status"] == "ok"
        assert info.content["node"] == node
        kernel = await outside.request(node, "kernel_info_request", channel="control")
        assert kernel.content["implementation"] == "rovbus"
        assert kernel.header["username"] == node  # the node answered, not the forwarder
    per_node = (await outside.stats())["requests"]["per_node"]
    assert per_node["alpha"] >= 2
    assert per_node["beta"] >= 2


async def test_an_unknown_node_gets_an_error_reply_naming_it(outside: Outside) -> None:
    reply = await outside.request("gamma", "node_info_request")
    assert reply.msg_type == "node_info_reply"
    assert reply.content["status"] == "error"
    assert reply.content["ename"] == "UnknownNode"
    assert "'gamma'" in reply.content["evalue"]
    assert "alpha, beta" in reply.content["evalue"]
    assert reply.header["username"] == "tether"


async def test_a_bad_channel_or_no_routing_frames_get_error_replies(outside: Outside) -> None:
    reply = await outside.request("alpha", "node_info_request", channel="stdin")
    assert reply.content["status"] == "error"
    assert "shell or control" in reply.content["evalue"]
    reply = await outside.request("alpha", "node_info_request", identities=())
    assert reply.content["status"] == "error"
    assert "[node, channel]" in reply.content["evalue"]


async def test_the_forwarder_answers_its_own_control_requests(outside: Outside) -> None:
    kernel = await outside.control("kernel_info_request")
    assert kernel.content["implementation"] == "rovbus-forwarder"
    info = (await outside.control("node_info_request")).content
    assert info["status"] == "ok"
    assert (info["inner"], info["outer"]) == ("vehicle", "topside")
    assert [n["name"] for n in info["nodes"]] == ["alpha", "beta"]
    assert set(info["endpoints"]) == {"pub", "request", "control"}
    assert info["counters"]["pub"]["running"] is True
    unknown = await outside.control("frobnicate_request")
    assert unknown.content["status"] == "error"
    assert "frobnicate_request" in unknown.content["evalue"]
    paused = await outside.control("pause_request")
    assert paused.content["paused"] is True
    resumed = await outside.control("resume_request")
    assert resumed.content["paused"] is False
    assert (await outside.stats())["pub"]["paused"] is False


async def test_transmit_goes_on_again_from_topside_only_with_a_reason(outside: Outside) -> None:
    off = await outside.request("alpha", "tx_off_request", {"reason": "topside"}, channel="control")
    assert off.content == {"status": "ok", "tx_enabled": False}
    try:
        refused = await outside.request("alpha", "tx_on_request", channel="control")
        assert refused.header["username"] == "alpha"  # the node's control channel answered
        assert refused.content["status"] == "error"
        assert "turning transmit on needs a reason" in refused.content["evalue"]
        sent = await outside.request(
            "alpha", "can_send_request", {"bus": "can0", "frames": ["123#01"]}
        )
        assert "transmit disabled" in sent.content["evalue"]
        await send(outside, "beta", "123#01")  # only alpha stopped
    finally:
        on = await outside.request(
            "alpha", "tx_on_request", {"reason": "test over"}, channel="control"
        )
    assert on.content == {"status": "ok", "tx_enabled": True}
    await send(outside, "alpha", "123#01")
