"""Hosts in the system file: which computer runs what, where peers connect, what collides."""

from __future__ import annotations

import pytest

from rovbus.config import SystemConfig, parse_system
from rovbus.config.hosts import (
    IMPLICIT_HOST,
    binds,
    reached_at,
    require_placement,
    this_host,
)
from rovbus.errors import ConfigError

HEAD = '[system]\nname = "t"\n[groups.vehicle]\n[groups.topside]\n'


def node(
    name: str, bind: str, port: int, *, host: str | None = None, group: str = "vehicle"
) -> str:
    """A node whose five endpoints bind ``bind`` on ports ``port``..``port + 4``."""
    on = f'host = "{host}"\n' if host else ""
    channels = ("pub", "shell", "control", "stdin", "hb")
    endpoints = "".join(f'{ch} = "tcp://{bind}:{port + i}"\n' for i, ch in enumerate(channels))
    return f'[nodes.{name}]\ngroup = "{group}"\n{on}[nodes.{name}.endpoints]\n{endpoints}'


def forwarder(name: str, bind: str, port: int, *, host: str | None = None) -> str:
    on = f'host = "{host}"\n' if host else ""
    return (
        f'[forwarders.{name}]\n{on}inner = "vehicle"\nouter = "topside"\n'
        f"[forwarders.{name}.endpoints]\n"
        f'pub = "tcp://{bind}:{port}"\nrequest = "tcp://{bind}:{port + 1}"\n'
        f'control = "tcp://{bind}:{port + 2}"\n'
    )


HOSTS = """
[hosts.main]
address = "192.168.2.2"
[hosts.nav]
hostname = "rov-nav"
addresses = { vehicle = "10.0.0.3", topside = "192.168.2.3" }
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_system(text, check_files=False)
    return caught.value.problems


def reached(system: SystemConfig, owner: str) -> dict[str, str]:
    """``channel -> endpoint peers connect to`` of every socket ``nodes.X`` or
    ``forwarders.X`` binds."""
    return {
        bind.channel: str(reached_at(system, bind)) for bind in binds(system) if bind.owner == owner
    }


# -- collisions: per host -------------------------------------------------------------------


def test_two_hosts_bind_the_same_port() -> None:
    """Nodes on two computers both bind tcp://*:7100 (and more): a real vehicle does that."""
    system = parse_system(
        HEAD
        + HOSTS
        + node("propulsion", "*", 7100, host="main")
        + node("navigation", "*", 7100, host="nav")
    )
    assert reached(system, "nodes.propulsion")["pub"] == "tcp://192.168.2.2:7100"
    assert reached(system, "nodes.navigation")["pub"] == "tcp://10.0.0.3:7100"


def test_the_same_host_twice_is_refused() -> None:
    text = HEAD + HOSTS + node("propulsion", "*", 7100, host="main")
    assert problems(text + node("power", "0.0.0.0", 7104, host="main")) == [
        "nodes.power.endpoints.pub: tcp://0.0.0.0:7104 is already used by "
        "nodes.propulsion.endpoints.hb (as tcp://*:7104)"
    ]
    # a forwarder on the same computer collides with its nodes as well
    assert problems(text + forwarder("tether", "192.168.2.2", 7104, host="main")) == [
        "forwarders.tether.endpoints.pub: tcp://192.168.2.2:7104 is already used by "
        "nodes.propulsion.endpoints.hb (as tcp://*:7104)"
    ]


def test_without_hosts_the_file_is_one_computer() -> None:
    """Files written before hosts: every endpoint collides with every other, as before."""
    assert problems(
        HEAD + node("propulsion", "*", 7100) + node("navigation", "10.0.0.3", 7104)
    ) == [
        "nodes.navigation.endpoints.pub: tcp://10.0.0.3:7104 is already used by "
        "nodes.propulsion.endpoints.hb (as tcp://*:7104)"
    ]


# -- where peers connect ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bind", "group", "expected"),
    [
        ("*", "vehicle", "tcp://10.0.0.3:7100"),
        ("0.0.0.0", "vehicle", "tcp://10.0.0.3:7100"),
        ("eth1", "vehicle", "tcp://10.0.0.3:7100"),
        ("10.0.0.3", "vehicle", "tcp://10.0.0.3:7100"),
        ("*", "topside", "tcp://192.168.2.3:7100"),
        ("eth0", "topside", "tcp://192.168.2.3:7100"),
    ],
)
def test_peers_connect_to_the_hosts_address_for_the_group(
    bind: str, group: str, expected: str
) -> None:
    system = parse_system(HEAD + HOSTS + node("n", bind, 7100, host="nav", group=group))
    assert reached(system, "nodes.n")["pub"] == expected


def test_without_hosts_a_wildcard_is_reached_on_loopback() -> None:
    system = parse_system(HEAD + node("n", "*", 7100) + node("m", "10.1.1.1", 7200))
    assert reached(system, "nodes.n")["shell"] == "tcp://127.0.0.1:7101"
    assert reached(system, "nodes.m")["shell"] == "tcp://10.1.1.1:7201"
    assert [bind.host for bind in binds(system)] == [IMPLICIT_HOST] * 10


def test_an_ipv6_host_address_is_bracketed() -> None:
    text = HEAD + '[hosts.main]\naddress = "fd00::2"\n' + node("n", "*", 7100, host="main")
    assert reached(parse_system(text), "nodes.n")["hb"] == "tcp://[fd00::2]:7104"


# -- binds that cannot work on their host ---------------------------------------------------------


def test_an_address_the_host_does_not_have() -> None:
    text = HEAD + HOSTS + node("n", "*", 7100, host="main")
    text = text.replace('shell = "tcp://*:7101"', 'shell = "tcp://192.168.2.3:7101"')
    assert problems(text) == [
        "nodes.n.endpoints.shell: host main has no address 192.168.2.3 (its addresses per "
        "the file: 192.168.2.2); bind 192.168.2.2, an interface, * or 0.0.0.0, or correct "
        "hosts.main"
    ]


def test_the_hosts_address_on_another_network() -> None:
    """nav's tether address, bound for the vehicle group: vehicle peers would connect to
    10.0.0.3, where nothing listens."""
    assert problems(HEAD + HOSTS + node("n", "192.168.2.3", 7100, host="nav")) == [
        f"nodes.n.endpoints.{ch}: 192.168.2.3 is host nav's address for group topside, but "
        "group vehicle reaches it at 10.0.0.3; bind 10.0.0.3, an interface, * or 0.0.0.0"
        for ch in ("pub", "shell", "control", "stdin", "hb")
    ]


def test_a_host_without_an_address_for_the_group() -> None:
    text = HEAD + '[hosts.nav]\naddresses = { topside = "192.168.2.3" }\n'
    assert problems(text + node("n", "*", 7100, host="nav") + node("m", "*", 7200, host="nav")) == [
        "hosts.nav: no address by which group vehicle reaches this host, where it binds "
        "sockets for vehicle; set hosts.nav.address or hosts.nav.addresses.vehicle"
    ]


def test_every_daemon_names_a_known_host() -> None:
    text = HEAD + HOSTS + node("a", "*", 7100) + node("b", "*", 7200, host="topside")
    text += forwarder("tether", "*", 7300, host="main")
    assert problems(text) == [
        "nodes.a.host: required key is missing: the file declares hosts (main, nav), so "
        "every node and forwarder names the one it runs on",
        'nodes.b.host: unknown host "topside"; known hosts: main, nav',
    ]
    assert problems(HEAD + node("a", "*", 7100, host="main")) == [
        'nodes.a.host: unknown host "main"; the file declares no hosts (add [hosts.main])'
    ]


def test_host_tables_are_checked() -> None:
    text = HEAD + '[hosts.a]\naddresses = { sea = "10.0.0.1" }\n[hosts.b]\nhostname = "a"\n'
    assert problems(text) == [
        'hosts.a.addresses.sea: unknown group "sea"; known groups: "vehicle", "topside"',
        'hosts.b.hostname: "a" is already the hostname of hosts.a; a daemon tells its host '
        "by it (set hostname = ... on one of them)",
    ]
    assert problems(HEAD + '[hosts.a]\naddress = "*"\n') == [
        'hosts.a.address: "*" means every interface, which only a bind can use; give the '
        "address others connect to, such as 192.168.2.2"
    ]


def test_a_forwarder_cannot_reach_ipc_on_another_host() -> None:
    text = (
        HEAD
        + HOSTS
        + node("n", "*", 7100, host="nav")
        + forwarder("tether", "*", 7300, host="main")
    )
    text = text.replace('pub = "tcp://*:7100"', 'pub = "ipc:///run/rovbus/n-pub"')
    assert problems(text) == [
        "nodes.n.endpoints.pub: ipc:///run/rovbus/n-pub reaches only its own computer (host "
        "nav), and forwarders.tether connects to it from host main; use tcp"
    ]
    assert parse_system(text.replace('host = "nav"', 'host = "main"'))  # one computer: fine


# -- which host is this? -------------------------------------------------------------------


@pytest.fixture
def vehicle() -> SystemConfig:
    return parse_system(
        HEAD
        + HOSTS
        + node("propulsion", "*", 7100, host="main")
        + node("navigation", "*", 7100, host="nav")
    )


def test_this_host_by_option_or_hostname(vehicle: SystemConfig) -> None:
    assert this_host(vehicle, "nav", hostname="whatever").host == "nav"
    assert this_host(vehicle, None, hostname="main").host == "main"
    assert this_host(vehicle, None, hostname="main.rov.lan").host == "main"  # first label
    assert this_host(vehicle, None, hostname="rov-nav").host == "nav"  # its hostname key
    assert this_host(vehicle, None, hostname="nav").host is None  # nav's hostname is rov-nav
    with pytest.raises(ConfigError, match="no such host; known hosts: main, nav"):
        this_host(vehicle, "topside")


def test_a_daemon_refuses_another_hosts_node(vehicle: SystemConfig) -> None:
    require_placement(vehicle, "nodes", "propulsion", this_host(vehicle, "main"))
    require_placement(vehicle, "nodes", "propulsion", this_host(vehicle, None, "laptop"))
    with pytest.raises(ConfigError) as caught:
        require_placement(vehicle, "nodes", "propulsion", this_host(vehicle, None, "rov-nav"))
    assert caught.value.problems == [
        'nodes.propulsion: runs on host main, and this is host nav (hostname "rov-nav"); '
        "start it on main, or change nodes.propulsion.host"
    ]


def test_without_hosts_every_daemon_runs_anywhere() -> None:
    system = parse_system(HEAD + node("n", "*", 7100))
    here = this_host(system, None, hostname="anything")
    assert here.host == IMPLICIT_HOST
    require_placement(system, "nodes", "n", here)
