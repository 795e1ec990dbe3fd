"""Control requests from topside, through a forwarder, reach the node's control channel.

Only a node's control channel answers ``tx_off``, ``tx_on``, ``interrupt`` and
``shutdown`` (its shell answers them with an error), and each channel counts what it
takes in (``stats_request``: ``sockets.<channel>.messages_in``). So these fail if the
forwarder delivers a control request anywhere else; ``kernel_info``, which both channels
answer, cannot tell.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.forwarder.systems import Outside, System, system_running
from tests.helpers.systemfile import forwarder_toml, node_toml, system_toml


@pytest.fixture(scope="module")
def vehicle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp("control")
    path = tmp / "system.toml"
    # alpha for tx_off and interrupt, beta for tx_on, gamma to be shut down
    nodes = ["alpha", "beta", "gamma"]
    path.write_text(system_toml(*map(node_toml, nodes), forwarder_toml("tether")))
    with system_running(path, tmp, nodes, ["tether"]) as system:
        yield system


@pytest.fixture
async def topside(vehicle: System) -> Iterator[Outside]:  # type: ignore[misc]
    client = Outside(vehicle.config, "tether")
    yield client
    client.close()


async def taken_in(topside: Outside, node: str) -> dict[str, int]:
    """What the node's shell and control channels have read (this stats request included)."""
    reply = await topside.request(node, "stats_request")
    assert reply.content["status"] == "ok", reply.content
    return {ch: reply.content["sockets"][ch]["messages_in"] for ch in ("shell", "control")}


async def control(topside: Outside, node: str, msg_type: str) -> dict[str, object]:
    """``msg_type`` to the node's control channel by name; its reply's content, once the
    node's counters show it arrived on control (and nothing more on shell than the stats
    requests)."""
    before = await taken_in(topside, node)
    reply = await topside.request(node, msg_type, channel="control")
    assert reply.header["username"] == node, reply.content  # the node answered
    after = await taken_in(topside, node)
    assert after == {"shell": before["shell"] + 1, "control": before["control"] + 1}, (
        f"{msg_type} did not arrive on {node}'s control channel: {before} -> {after}"
    )
    return reply.content


async def test_tx_off_from_topside_stops_the_node_transmitting(topside: Outside) -> None:
    reply = await control(topside, "alpha", "tx_off_request")
    assert reply["status"] == "ok", reply
    assert reply["tx_enabled"] is False
    info = await topside.request("alpha", "node_info_request")
    assert [bus["tx_enabled"] for bus in info.content["buses"]] == [False]
    sent = await topside.request("alpha", "can_send_request", {"bus": "can0", "frames": ["123#01"]})
    assert sent.content["status"] == "error"
    assert "transmit disabled" in sent.content["evalue"]


async def test_interrupt_from_topside_is_answered_by_the_control_channel(
    topside: Outside,
) -> None:
    reply = await control(topside, "alpha", "interrupt_request")
    assert reply["status"] == "ok", reply
    assert reply["dropped"] == 0  # nothing was queued to transmit


async def test_tx_on_from_topside_arrives_on_the_control_channel(topside: Outside) -> None:
    # what tx_on requires to act is the node's business; where it arrives is the forwarder's
    await control(topside, "beta", "tx_on_request")


async def test_shutdown_from_topside_stops_the_node(vehicle: System, topside: Outside) -> None:
    reply = await topside.request("gamma", "shutdown_request", channel="control")
    assert reply.header["username"] == "gamma"
    assert reply.content["status"] == "ok", reply.content
    assert await asyncio.to_thread(vehicle.proc("gamma").wait, 10) == 0
