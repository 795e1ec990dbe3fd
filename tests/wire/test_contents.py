"""The heartbeat's shape: what a node and a forwarder build is what readers read back, and
a heartbeat of the wrong shape from a peer is read with defaults or not at all, never
guessed at (rovbus/wire/contents.py)."""

from __future__ import annotations

from typing import Any

import pytest

from rovbus.can.stats import PortState, PortStats
from rovbus.cli.output import pretty_line
from rovbus.client.nodetable import NodeTable
from rovbus.forwarder import contents as forwarder_contents
from rovbus.node import contents as node_contents
from rovbus.wire.codec import Codec
from rovbus.wire.contents import HelmBeat, read_heartbeat
from rovbus.wire.message import Message

CODEC = Codec()


def port_stats(state: PortState = "ok", rx: int = 10, tx: int = 2) -> PortStats:
    return PortStats(
        bus="can0",
        state=state,
        last_error=None,
        tx_enabled=True,
        rx=rx,
        rx_bytes=8 * rx,
        tx=tx,
        tx_bytes=8 * tx,
        errors=0,
        error_frames=0,
        tx_errors=0,
        tx_dropped=0,
        rx_dropped=0,
        reopen_count=0,
        tx_queued=0,
        callback_errors=0,
    )


HELM: HelmBeat = {
    "holder": "pilot",
    "session": "s9",
    "since": 1700000000.25,
    "lease_ms": 500,
    "lease_left_ms": 320,
    "failsafe_active": False,
    "reason": "taken",
    "failsafe_writes": 1,
    "failsafe_failures": 0,
}


def node_beat(seq: int = 3, state: str = "ok", bus_state: PortState = "ok") -> dict[str, Any]:
    return dict(
        node_contents.heartbeat(
            seq=seq,
            node="alpha",
            group="vehicle",
            session="s1",
            uptime=1.23456,
            interval=0.5,
            state=state,
            buses={"can0": port_stats(bus_state)},
            rejected=1,
            subscriptions={"in_force": 4, "over_cap": 0, "refused": 0},
            helm={"can0": HELM},
        )
    )


def arrived(content: dict[str, Any]) -> Message:
    """``content`` as a heartbeat off the wire: encoded and decoded."""
    return CODEC.decode(CODEC.encode(CODEC.message("heartbeat", content, identities=[b"a/hb"])))


def test_what_a_node_builds_is_what_a_reader_reads() -> None:
    content = arrived(node_beat()).content
    assert (
        read_heartbeat(content)
        == content
        == {
            "seq": 3,
            "node": "alpha",
            "group": "vehicle",
            "session": "s1",
            "uptime": 1.235,
            "interval": 0.5,
            "state": "ok",
            "buses": {"can0": {"state": "ok", "rx": 10, "tx": 2, "errors": 0, "tx_enabled": True}},
            "rejected": 1,
            "subscriptions": {"in_force": 4, "over_cap": 0, "refused": 0},
            "helm": {"can0": HELM},
        }
    )


def test_a_helm_sent_wrong_reads_as_no_holder_and_a_bus_of_no_map_is_left_out() -> None:
    beat = node_beat()
    beat["helm"] = {"can0": {"holder": 7, "failsafe_active": "yes"}, "can1": ["pilot"]}
    read = read_heartbeat(arrived(beat).content)
    assert read is not None
    assert read["helm"] == {
        "can0": {
            "holder": None,
            "session": None,
            "since": None,
            "lease_ms": 0,
            "lease_left_ms": 0,
            "failsafe_active": False,
            "reason": "",
            "failsafe_writes": 0,
            "failsafe_failures": 0,
        }
    }


def test_a_node_with_a_bus_down_says_degraded_unless_it_says_more() -> None:
    assert node_beat(bus_state="failed")["state"] == "degraded"
    assert node_beat(state="stopping", bus_state="failed")["state"] == "stopping"


def test_what_a_forwarder_builds_is_read_back() -> None:
    for built in (
        forwarder_contents.heartbeat(
            seq=1,
            name="tether",
            outer="topside",
            inner="vehicle",
            session="s2",
            uptime=2.0,
            interval=1.0,
            state="ok",
            nodes=["alpha"],
            pub={"subscriptions": 0},
            requests={"requests": 0},
            rejected=0,
            subscriptions={"in_force": 0, "over_cap": 0, "refused": 0},
        ),
        forwarder_contents.last_heartbeat(
            seq=2, name="tether", outer="topside", session="s2", uptime=3.0, interval=1.0
        ),
    ):
        beat = read_heartbeat(arrived(dict(built)).content)
        assert beat is not None
        assert (beat["node"], beat["group"], beat["buses"], beat.get("kind")) == (
            "tether",
            "topside",
            {},
            "forwarder",
        )


@pytest.mark.parametrize(
    "missing", [{"node": 7}, {"session": None}, {"seq": "3"}, {"seq": True}, {"interval": 0}]
)
def test_a_heartbeat_without_its_identity_is_not_read(missing: dict[str, Any]) -> None:
    assert read_heartbeat({**node_beat(), **missing}) is None


def test_fields_of_the_wrong_type_read_as_their_defaults() -> None:
    beat = read_heartbeat(
        {
            **node_beat(),
            "group": 5,
            "state": None,
            "uptime": "long",
            "buses": {"can0": {"state": 1, "rx": "many", "tx_enabled": "yes"}, "can1": [1]},
            "rejected": 1.5,
            "subscriptions": [],
            "helm": ["pilot"],
        }
    )
    assert beat == {
        "seq": 3,
        "node": "alpha",
        "group": "",
        "session": "s1",
        "uptime": 0.0,
        "interval": 0.5,
        "state": "",
        "buses": {"can0": {"state": "?", "rx": 0, "tx": 0, "errors": 0, "tx_enabled": True}},
    }


def test_a_heartbeat_whose_buses_are_not_a_map_neither_breaks_a_table_nor_a_line() -> None:
    """Before the shapes were read once, ``buses`` as a list raised AttributeError in the
    node table (the client's heartbeat loop) and in ``rovbus sub --pretty``."""
    odd = arrived({**node_beat(), "buses": ["can0"]})
    table = NodeTable(3, [("alpha", "vehicle")])
    assert table.observe(arrived(node_beat(seq=2)), 0.0)
    assert table.observe(odd, 0.5)
    assert table.row("alpha", 0.5).buses == ()
    assert "heartbeat #3 ok up 1.235 s; " in pretty_line(odd, 0.0)
