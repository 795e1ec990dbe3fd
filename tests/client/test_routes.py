"""Routes from a system file: own group direct, the rest through forwarders; the node table."""

from __future__ import annotations

from rovbus.client import UNHEARD, NodeTable, PubSource, default_group, routes_for_group
from rovbus.client.subscription import _socket_prefixes
from rovbus.config import parse_system
from rovbus.wire.codec import Codec
from tests.helpers.systemfile import node_toml

TETHER = """
[forwarders.tether]
inner = "vehicle"
outer = "topside"
[forwarders.tether.endpoints]
pub = "tcp://127.0.0.1:47001"
request = "tcp://127.0.0.1:47002"
control = "tcp://127.0.0.1:47003"
"""


def system(*tables: str) -> str:
    return '[system]\nname = "t"\n[groups.vehicle]\n[groups.topside]\n' + "\n".join(tables)


def test_default_group_and_routes_through_a_forwarder() -> None:
    cfg = parse_system(system(node_toml("alpha"), node_toml("beta"), TETHER))
    assert default_group(cfg) == "topside"
    routes = routes_for_group(cfg)
    (source,) = routes.sources
    assert source.endpoint == "tcp://127.0.0.1:47001"
    assert source.nodes == ("alpha", "beta")
    route = routes.route("beta")
    assert route.endpoint("control") == "tcp://127.0.0.1:47002"
    assert route.identities("control") == (b"beta", b"control")
    # an empty prefix never crosses a tether: one per node, plus each node's heartbeat
    assert _socket_prefixes(source, [""]) == ["alpha/", "beta/", "alpha/hb", "beta/hb"]


def test_routes_inside_the_group_are_direct() -> None:
    cfg = parse_system(system(node_toml("alpha"), TETHER))
    routes = routes_for_group(cfg, "vehicle")
    route = routes.route("alpha")
    assert route.via is None
    assert route.identities("shell") == ()
    assert route.shell == str(cfg.node("alpha").endpoints.shell)
    assert _socket_prefixes(routes.sources[0], [""]) == ["", "alpha/hb"]


def test_a_forwarder_socket_subscribes_only_to_what_comes_from_it() -> None:
    """Every prefix on a forwarder's outer side is narrowed to the nodes and forwarders
    whose messages come through it, so a node also reached directly is not heard twice."""
    source = PubSource("tcp://172.16.0.1:7300", ("gamma",), "gateway", ("gateway", "deep"))
    assert _socket_prefixes(source, ["", "alpha/", "ga", "gamma/can/", "gateway/hb"]) == [
        "gamma/",
        "gateway/",
        "gamma/can/",
        "gateway/hb",
        "gamma/hb",
    ]
    direct = PubSource("tcp://10.0.0.2:7100", ("alpha",))
    assert _socket_prefixes(direct, ["", "gamma/"]) == ["", "gamma/", "alpha/hb"]


def test_without_forwarder_the_default_is_the_first_group_with_nodes() -> None:
    cfg = parse_system(system(node_toml("alpha")))
    assert default_group(cfg) == "vehicle"


def heartbeat(codec: Codec, seq: int, rx: int, uptime: float, session: str = "s1"):  # type: ignore[no-untyped-def]
    content = {
        "seq": seq,
        "node": "alpha",
        "group": "vehicle",
        "session": session,
        "uptime": uptime,
        "interval": 1.0,
        "state": "ok",
        "buses": {"can0": {"state": "ok", "rx": rx, "tx": 0, "errors": 0, "tx_enabled": True}},
    }
    return codec.message("heartbeat", content, identities=(b"alpha/hb",))


def test_node_table_states_and_rates() -> None:
    codec = Codec()
    table = NodeTable(3, [("alpha", "vehicle"), ("beta", "vehicle")])
    assert [r.state for r in table.rows(0.0)] == [UNHEARD, UNHEARD]
    table.observe(heartbeat(codec, 0, 0, 10.0), 100.0)
    table.observe(heartbeat(codec, 1, 50, 11.0), 101.0)
    alpha = table.row("alpha", 101.2)
    assert alpha.state == "alive"
    assert alpha.rx_rate == 50.0
    assert alpha.uptime == 11.0
    assert table.row("alpha", 103.0).state == "late"
    assert table.row("alpha", 105.0).state == "dead"
    table.observe(heartbeat(codec, 0, 0, 0.5, session="s2"), 106.0)
    row = table.row("alpha", 106.1)
    assert row.state == "restarted"
    assert row.restarts == 1
    assert row.rx_rate is None
    assert not table.observe(codec.message("status", {}), 0.0)
