"""The one model of who reaches whom: from a group, a host or a forwarder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rovbus.config import SystemConfig, load_system, parse_system
from rovbus.config.reach import (
    Reach,
    groups_of_host,
    reach_from_forwarder,
    reach_from_group,
    reach_from_host,
)
from rovbus.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "example-vehicle.toml"

# vehicle -> tether -> topside -> gateway -> shore; tether and the vehicle's nodes bind
# wildcards on host rov, which the topside reaches over the tether at 192.168.2.2
CHAIN = """
[system]
name = "chain"
[groups.vehicle]
[groups.topside]
[groups.shore]

[hosts.rov]
addresses = { vehicle = "10.0.0.2", topside = "192.168.2.2" }
[hosts.van]
addresses = { topside = "192.168.2.1", shore = "172.16.0.1" }
[hosts.office]
addresses = { shore = "172.16.0.9" }
[hosts.split]
addresses = { vehicle = "10.0.0.9", shore = "172.16.0.8" }

[nodes.alpha]
group = "vehicle"
host = "rov"
[nodes.alpha.endpoints]
pub = "tcp://*:7100"
shell = "tcp://*:7101"
control = "tcp://0.0.0.0:7102"
stdin = "tcp://*:7103"
hb = "tcp://*:7104"

[nodes.gamma]
group = "topside"
host = "van"
[nodes.gamma.endpoints]
pub = "tcp://192.168.2.1:7150"
shell = "tcp://eth0:7151"
control = "tcp://eth0:7152"
stdin = "tcp://eth0:7153"
hb = "tcp://eth0:7154"

[forwarders.tether]
host = "rov"
inner = "vehicle"
outer = "topside"
[forwarders.tether.endpoints]
pub = "tcp://*:7200"
request = "tcp://*:7201"
control = "tcp://*:7202"

[forwarders.gateway]
host = "van"
inner = "topside"
outer = "shore"
[forwarders.gateway.endpoints]
pub = "tcp://*:7300"
request = "tcp://*:7301"
control = "tcp://*:7302"
"""


@pytest.fixture(scope="module")
def chain() -> SystemConfig:
    return parse_system(CHAIN)


def routes(reach: Reach) -> dict[str, tuple[str, str, tuple[str, ...]]]:
    return {n: (r.shell, r.control, r.path) for n, r in reach.routes.items()}


def sources(reach: Reach) -> list[tuple[str, tuple[str, ...], str | None, tuple[str, ...]]]:
    return [(s.endpoint, s.nodes, s.via, s.forwarders) for s in reach.sources]


def test_from_a_group_nodes_directly_at_their_hosts_address(chain: SystemConfig) -> None:
    reach = reach_from_group(chain, "vehicle")
    assert routes(reach) == {"alpha": ("tcp://10.0.0.2:7101", "tcp://10.0.0.2:7102", ())}
    assert sources(reach) == [("tcp://10.0.0.2:7100", ("alpha",), None, ())]


def test_from_a_group_the_rest_through_forwarders(chain: SystemConfig) -> None:
    reach = reach_from_group(chain, "shore")
    request = "tcp://172.16.0.1:7301"  # the gateway's, on the van's shore address
    assert routes(reach) == {
        "gamma": (request, request, ("gateway",)),
        "alpha": (request, request, ("gateway", "tether")),
    }
    assert reach.routes["alpha"].hops == 2
    assert reach.routes["alpha"].via == "gateway"
    assert reach.routes["alpha"].identities("control") == (b"alpha", b"control")
    assert sources(reach) == [
        ("tcp://172.16.0.1:7300", ("gamma", "alpha"), "gateway", ("gateway", "tether"))
    ]
    assert reach.sources[0].secure
    assert reach.forwarders == ("gateway", "tether")


def test_from_a_forwarder_its_inner_side(chain: SystemConfig) -> None:
    """The gateway connects to gamma on the van's topside address (gamma binds an
    interface) and to the tether's outer side at rov's topside address."""
    reach = reach_from_forwarder(chain, "gateway")
    assert routes(reach) == {
        "gamma": ("tcp://192.168.2.1:7151", "tcp://192.168.2.1:7152", ()),
        "alpha": ("tcp://192.168.2.2:7201", "tcp://192.168.2.2:7201", ("tether",)),
    }
    assert [(s.endpoint, s.secure) for s in reach.sources] == [
        ("tcp://192.168.2.1:7150", False),
        ("tcp://192.168.2.2:7200", True),
    ]
    assert reach.forwarders == ("tether",)


def test_from_a_host_every_group_it_is_on(chain: SystemConfig) -> None:
    """rov runs alpha (vehicle) and the tether (vehicle to topside): a program there
    reaches alpha and gamma directly, and nothing through the tether it stands beside."""
    assert groups_of_host(chain, "rov") == ["vehicle", "topside"]
    reach = reach_from_host(chain, "rov")
    assert routes(reach) == {
        "alpha": ("tcp://10.0.0.2:7101", "tcp://10.0.0.2:7102", ()),
        "gamma": ("tcp://192.168.2.1:7151", "tcp://192.168.2.1:7152", ()),
    }
    assert [s.via for s in reach.sources] == [None, None]


def test_a_host_on_two_ends_reaches_each_node_once(chain: SystemConfig) -> None:
    """van runs gamma (topside) and the gateway (topside to shore): alpha is reached
    through the tether alone, never also through the gateway. office runs nothing: its
    address for shore puts it there."""
    assert groups_of_host(chain, "office") == ["shore"]
    assert routes(reach_from_host(chain, "office")) == routes(reach_from_group(chain, "shore"))
    van = reach_from_host(chain, "van")
    assert van.groups == ("topside", "shore")
    assert routes(van)["alpha"] == ("tcp://192.168.2.2:7201", "tcp://192.168.2.2:7201", ("tether",))
    assert sources(van) == [
        ("tcp://192.168.2.1:7150", ("gamma",), None, ()),
        ("tcp://192.168.2.2:7200", ("alpha",), "tether", ("tether",)),
    ]


def test_a_node_behind_a_forwarder_and_also_direct_has_one_route(chain: SystemConfig) -> None:
    """split is on the vehicle LAN and on shore: alpha directly, gamma through the
    gateway, whose source carries gamma only (the tether behind it leads to alpha, which
    is reached directly)."""
    reach = reach_from_host(chain, "split")
    assert {n: r.path for n, r in reach.routes.items()} == {"alpha": (), "gamma": ("gateway",)}
    assert sources(reach) == [
        ("tcp://10.0.0.2:7100", ("alpha",), None, ()),
        ("tcp://172.16.0.1:7300", ("gamma",), "gateway", ("gateway",)),
    ]


def test_unknown_starting_points(chain: SystemConfig) -> None:
    with pytest.raises(ConfigError, match=r"groups\.sea: no such group; known groups: vehicle"):
        reach_from_group(chain, "sea")
    with pytest.raises(
        ConfigError, match=r"hosts\.boat: no such host; known hosts: rov, van, office, split"
    ):
        reach_from_host(chain, "boat")
    with pytest.raises(ConfigError, match="known forwarders: tether, gateway"):
        reach_from_forwarder(chain, "alpha")


def _without_hosts(text: str) -> str:
    text = re.sub(r"\[hosts\.[a-z]+\]\n(?:[a-z]+ = .*\n)*", "", text)
    return re.sub(r'^host = ".*"\n', "", text, flags=re.MULTILINE)


@pytest.mark.parametrize("start", ["vehicle", "topside"])
def test_the_example_reaches_what_it_reached_without_hosts(start: str) -> None:
    """config/example-vehicle.toml now declares its three computers; every route and
    source is what the same file without hosts gives (the addresses its binds name)."""
    example = load_system(EXAMPLE, check_files=False)
    assert set(example.hosts) == {"topside", "main", "nav"}
    bare = parse_system(_without_hosts(EXAMPLE.read_text()), check_files=False)
    assert not bare.hosts
    assert reach_from_group(example, start).routes == reach_from_group(bare, start).routes
    assert reach_from_group(example, start).sources == reach_from_group(bare, start).sources
    tether = reach_from_forwarder(example, "tether")
    assert tether.sources == reach_from_forwarder(bare, "tether").sources
