"""Three groups, two forwarders (vehicle -> tether -> topside -> gateway -> shore)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from rovbus.forwarder import topology_of
from rovbus.wire.message import Message
from tests.forwarder.systems import Outside, System, system_running
from tests.helpers.systemfile import forwarder_toml, node_toml, system_toml
from tests.helpers.waiting import eventually
from tests.node.running import wait_for


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp("chain")
    path = tmp / "system.toml"
    path.write_text(
        system_toml(
            node_toml("alpha"),
            node_toml("gamma", group="topside"),
            forwarder_toml("tether", "vehicle", "topside"),
            forwarder_toml("gateway", "topside", "shore"),
            interval=0.5,
            extra="[groups.shore]\n",
        )
    )
    with system_running(path, tmp, ["alpha", "gamma"], ["tether", "gateway"]) as system:
        yield system


def test_topology_of_a_chain(chain: System) -> None:
    gateway = topology_of(chain.config, "gateway")
    assert gateway.nodes == ["gamma", "alpha"]
    assert gateway.targets["gamma"].via is None
    alpha = gateway.targets["alpha"]
    assert (alpha.via, alpha.hops) == ("tether", 1)
    assert alpha.shell == str(chain.config.forwarder("tether").endpoints.request)
    assert gateway.inner_forwarders == ("tether",)
    assert [s.secure for s in gateway.sources] == [False, True]
    assert "tether/hb" in gateway.cached_topics()


@pytest.fixture
async def shore(chain: System) -> Iterator[Outside]:  # type: ignore[misc]
    client = Outside(chain.config, "gateway")
    yield client
    client.close()


async def test_requests_reach_nodes_one_and_two_forwarders_away(shore: Outside) -> None:
    for node in ("gamma", "alpha", "alpha"):
        reply = await shore.request(node, "node_info_request")
        assert reply.content["status"] == "ok", reply.content
        assert reply.content["node"] == node
        assert reply.header["username"] == node
    reply = await shore.request("alpha", "kernel_info_request", channel="control")
    assert reply.content["implementation"] == "rovbus"
    # only the node's control channel answers interrupt (kernel_info cannot tell)
    reply = await shore.request("alpha", "interrupt_request", channel="control")
    assert (reply.content["status"], reply.content["dropped"]) == ("ok", 0), reply.content
    unknown = await shore.request("delta", "node_info_request")
    assert unknown.content["ename"] == "UnknownNode"
    assert "gamma, alpha" in unknown.content["evalue"]


async def test_frames_and_heartbeats_cross_both_boundaries(shore: Outside) -> None:
    sub = shore.subscriber("alpha/can/can0/3", "alpha/hb", "tether/hb")
    await wait_for(sub, lambda m: m.topic == "alpha/hb", timeout=10)
    first = await wait_for(sub, lambda m: m.topic == "tether/hb", timeout=10)
    # the forwarder numbers its own heartbeats, so a subscriber can count what it missed:
    # once subscribed, each is the last one plus one. A late joiner may first get a number
    # twice, or an older one after a newer: both forwarders' last-value caches replay the
    # latest they hold, the gateway's at once, the tether's when the subscription reaches it
    second = await wait_for(sub, _tether_hb_after(first.header["seq"]), timeout=10)
    third = await wait_for(sub, _tether_hb_after(second.header["seq"]), timeout=10)
    assert third.header["seq"] == second.header["seq"] + 1

    async def crossed() -> bool:
        await shore.request("alpha", "can_send_request", {"bus": "can0", "frames": ["345#0102"]})
        try:
            msg = await wait_for(sub, lambda m: m.topic.startswith("alpha/can/"), timeout=0.5)
        except TimeoutError:
            return False
        assert msg.topic == "alpha/can/can0/345"
        assert msg.content["data"] == b"\x01\x02"
        return True

    await eventually(crossed, what="a frame from the vehicle to reach the shore")
    stats = await shore.stats()
    assert stats["pub"]["inner_parts_in"] > 0


def _tether_hb_after(seq: int) -> Callable[[Message], bool]:
    return lambda m: m.topic == "tether/hb" and m.header["seq"] > seq
