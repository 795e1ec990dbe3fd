"""A forwarder's ``node_info`` and ``stats`` contents, built by pure functions from what the
daemon holds (rovbus/forwarder/contents.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rovbus.config import load_system
from rovbus.forwarder.contents import forwarder_info, forwarder_stats
from rovbus.forwarder.pubpath import ProxyStats
from rovbus.forwarder.topology import topology_of
from rovbus.wire.contents import ForwarderStats

DEMO = Path(__file__).parents[2] / "config" / "demo.toml"


def _stats(**changes: Any) -> ForwarderStats:
    given: dict[str, Any] = {
        "name": "tether",
        "uptime": 12.34567,
        "proxy": ProxyStats(outer_parts_out=7),
        "paused": False,
        "running": True,
        "prefixes": {b"nav/hb", b"propulsion/"},
        "lvc": {"subscriptions": 2, "topics": ["nav/hb"]},
        "requests": {"requests": 3},
        "control": {"messages_in": 1},
        "guard": {"in_force": 2},
        "refused": 1,
        "refused_addresses": {"10.0.0.9": 4.5},
        "dispatch": {"control": {"requests": 1}},
        "curve": None,
    }
    return forwarder_stats(**{**given, **changes})


def test_stats_say_the_pub_path_its_prefixes_and_the_refused_peers() -> None:
    stats = _stats()
    assert stats["forwarder"] == "tether"
    assert stats["uptime"] == 12.346
    assert stats["pub"]["outer_parts_out"] == 7
    assert stats["pub"]["prefixes"] == ["nav/hb", "propulsion/"]
    assert stats["pub"]["subscriptions"] == 2
    assert (stats["pub"]["paused"], stats["pub"]["running"]) == (False, True)
    assert stats["subscriptions"] == {
        "in_force": 2,
        "refused": 1,
        "refused_addresses": {"10.0.0.9": 4.5},
    }
    assert "curve" not in stats


def test_stats_have_curve_only_with_curve() -> None:
    assert _stats(curve={"handshake_failures": {}})["curve"] == {"handshake_failures": {}}


def test_node_info_names_the_groups_and_what_lies_behind() -> None:
    system = load_system(DEMO)
    topology = topology_of(system, "tether")
    counters = _stats()
    info = forwarder_info(
        config=system.forwarder("tether"),
        topology=topology,
        session="s1",
        uptime=1.0004,
        state="ok",
        signed=True,
        curve=False,
        request_timeout=3.0,
        serializer="msgpack",
        counters=counters,
    )
    config = system.forwarder("tether")
    assert (info["node"], info["forwarder"], info["kind"]) == ("tether", "tether", "forwarder")
    assert (info["inner"], info["outer"], info["group"]) == (
        config.inner,
        config.outer,
        config.outer,
    )
    assert [n["name"] for n in info["nodes"]] == topology.nodes
    assert info["endpoints"] == {name: str(ep) for name, ep in config.endpoints.items()}
    assert info["uptime"] == 1.0
    assert info["counters"] is counters
