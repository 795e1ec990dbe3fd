"""Parsed values (endpoints, allowed IDs) and how problems are worded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rovbus.config import (
    BusConfig,
    Endpoint,
    TxAllowList,
    format_key_path,
    parse_endpoint,
    parse_entry,
    parse_system,
)
from rovbus.config.endpoints import parse_address
from rovbus.config.problems import describe
from rovbus.errors import ConfigError

# -- TxAllowList -----------------------------------------------------------------------------


def test_allows_ranges_and_single_ids() -> None:
    allow = TxAllowList.parse(["0x200-0x20F", "0x300", 1024, "2000-2001", "4000-4001"])
    assert allow.standard == ((0x200, 0x20F), (0x300, 0x300), (1024, 1024), (2000, 2001))
    assert allow.extended == ((4000, 4001),)  # above 0x7FF: 29-bit, however written
    for inside in (0x200, 0x205, 0x20F, 0x300, 1024, 2000, 2001):
        assert allow.allows(inside, extended=False)
    for outside in (0, 0x1FF, 0x210, 0x2FF, 0x301, 1023, 1025, 1999, 2002, 0x7FF):
        assert not allow.allows(outside, extended=False)
    assert allow.allows(4000, extended=True)
    assert not allow.allows(2000, extended=True)
    assert not allow.allows(3999, extended=True)
    assert not allow.allows(0x1FFFFFFF, extended=True)


def test_an_entry_up_to_0x7ff_allows_only_11_bit_ids() -> None:
    allow = TxAllowList.parse(["0x200-0x20F"])
    assert allow.allows(0x201, extended=False)
    assert not allow.allows(0x201, extended=True)  # 00000201: another identifier
    assert not allow.allows(0x20F, extended=True)
    assert str(allow) == "11-bit 0x200-0x20F; 29-bit none"


def test_ext_marks_an_entry_29_bit() -> None:
    allow = TxAllowList.parse(["ext:0x201", "EXT: 0x300-0x30F", "ext:0x18FF5000-0x18FF50FF"])
    assert allow.standard == ()
    assert allow.extended == ((0x201, 0x201), (0x300, 0x30F), (0x18FF5000, 0x18FF50FF))
    assert allow.allows(0x201, extended=True)
    assert not allow.allows(0x201, extended=False)
    assert (
        str(allow) == "11-bit none; 29-bit 0x00000201, 0x00000300-0x0000030F, 0x18FF5000-0x18FF50FF"
    )


def test_a_range_across_0x7ff_is_split_by_format() -> None:
    entry = parse_entry("0x700-0x900")
    assert (entry.standard, entry.extended) == ((0x700, 0x7FF), (0x800, 0x900))
    assert str(entry) == "11-bit 0x700-0x7FF and 29-bit 0x00000800-0x00000900"
    allow = TxAllowList.parse(["0x0-0x1FFFFFFF"])  # all 11-bit IDs, 29-bit ones from 0x800
    assert allow.allows(0x7FF, extended=False)
    assert allow.allows(0x800, extended=True)
    assert not allow.allows(0x7FF, extended=True)
    assert str(parse_entry(0x300)) == "11-bit 0x300"
    assert parse_entry(0x18FF5000).extended == (0x18FF5000, 0x18FF5000)


def test_allow_list_merges_and_sorts() -> None:
    allow = TxAllowList.parse(["0x300-0x30F", "0x100", "0x101-0x102", "0x305-0x310"])
    assert allow
    assert allow.standard == ((0x100, 0x102), (0x300, 0x310))
    assert str(allow) == "11-bit 0x100-0x102, 0x300-0x310; 29-bit none"
    assert [entry.text for entry in allow.entries] == [
        "0x300-0x30F",
        "0x100",
        "0x101-0x102",
        "0x305-0x310",
    ]


def test_one_id_left_out_between_two_entries_stays_refused() -> None:
    allow = TxAllowList.parse(["0x200-0x20F", "0x211-0x21F", "ext:0x1000", "ext:0x1002"])
    assert not allow.allows(0x210, extended=False)
    assert not allow.allows(0x1001, extended=True)
    assert str(allow) == "11-bit 0x200-0x20F, 0x211-0x21F; 29-bit 0x00001000, 0x00001002"


def test_the_first_and_last_ids_of_each_format() -> None:
    assert str(parse_entry(0)) == "11-bit 0x000"  # a TOML integer
    assert str(parse_entry(0x1FFFFFFF)) == "29-bit 0x1FFFFFFF"
    assert str(parse_entry("0x300-0x300")) == "11-bit 0x300"  # a range of one ID
    last = TxAllowList.parse(["0x7FF"])  # the last 11-bit ID, and nothing 29-bit
    assert str(last) == "11-bit 0x7FF; 29-bit none"
    assert last.allows(0x7FF, extended=False)
    assert not last.allows(0x7FF, extended=True)


def test_empty_allow_list_allows_nothing() -> None:
    allow = TxAllowList.parse([])
    assert not allow
    assert not allow.allows(0, extended=False)
    assert not allow.allows(0, extended=True)
    assert str(allow) == "nothing"


def test_extended_ids() -> None:
    allow = TxAllowList.parse(["0x18FF0000-0x18FFFFFF"])
    assert allow.allows(0x18FF1234, extended=True)
    assert not allow.allows(0x18FE0000, extended=True)
    assert parse_entry("0x1FFFFFFF").extended == (0x1FFFFFFF, 0x1FFFFFFF)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("0x20F-0x200", 'range "0x20F-0x200" starts above its end (0x20F > 0x200)'),
        ("ext:0x20F-0x200", 'range "ext:0x20F-0x200" starts above its end'),
        ("0x20000000", "0x20000000 is out of the 29-bit ID range"),
        ("ext:0x20000000", "0x20000000 is out of the 29-bit ID range"),
        ("fast", '"fast" is not a number'),
        ("0x100-", '"" is not a number'),
        ("ext:", '"" is not a number'),
        ("x:0x201", '"x:0x201": unknown mark "x:"; only "ext:" (29-bit IDs)'),
        ("std:0x201", 'unknown mark "std:"'),
        ("ext:ext:0x201", '"ext:0x201" is not a number'),  # one mark, then the ID
        (-1, "out of the 29-bit ID range"),
        (0x20000000, "0x20000000 is out of the 29-bit ID range"),
        (True, 'expected an ID or range like "0x200-0x20F" or "ext:0x18FF5000", got true'),
        (1.5, "expected an ID or range like"),
    ],
)
def test_bad_entries(item: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_entry(item)


def test_a_bus_keeps_each_tx_allow_entry_and_its_format() -> None:
    bus = {"name": "can0", "interface": "virtual", "channel": "c"}
    can0 = BusConfig.model_validate({**bus, "tx_allow": ["0x200-0x20F", "ext:0x201", 0x300]})
    assert [str(e) for e in can0.tx_allow.entries] == [
        "11-bit 0x200-0x20F",
        "29-bit 0x00000201",
        "11-bit 0x300",
    ]
    assert can0.model_dump()["tx_allow"] == ["0x200-0x20F", "ext:0x201", "0x300"]
    can1 = BusConfig.model_validate(bus)
    assert not can1.tx_allow  # absent: nothing may be sent
    assert not can1.allows(0x200, extended=False)


# -- endpoints -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tcp://127.0.0.1:7100", Endpoint("tcp", host="127.0.0.1", port=7100)),
        ("tcp://*:1", Endpoint("tcp", host="*", port=1)),
        ("tcp://localhost:65535", Endpoint("tcp", host="localhost", port=65535)),
        ("tcp://rov-main.local:7100", Endpoint("tcp", host="rov-main.local", port=7100)),
        ("tcp://[::1]:7100", Endpoint("tcp", host="[::1]", port=7100)),
        ("ipc:///run/rovbus/propulsion.pub", Endpoint("ipc", path="/run/rovbus/propulsion.pub")),
        ("inproc://test", Endpoint("inproc", path="test")),
    ],
)
def test_parse_endpoint(text: str, expected: Endpoint) -> None:
    endpoint = parse_endpoint(text)
    assert endpoint == expected
    assert str(endpoint) == text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tcp://127.0.0.1:0", "port 0 in"),
        ("tcp://127.0.0.1:65536", "out of range 1-65535"),
        ("tcp://127.0.0.1:http", 'port "http"'),
        ("tcp://127.0.0.1", "is not tcp://HOST:PORT"),
        ("tcp://:7100", "the host is empty"),
        ("tcp://300.1.1.1:7100", "not a valid IPv4 address"),
        ("tcp://bad_host!:7100", "is not an IP address, localhost, * or a hostname"),
        ("tcp://[zz]:7100", "not an IPv6 address"),
        ("ipc://relative/path", "must be absolute"),
        ("inproc://", "needs a name"),
        ("udp://1.2.3.4:5", 'unknown transport "udp"'),
        ("127.0.0.1:7100", "is not an endpoint"),
    ],
)
def test_bad_endpoints(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_endpoint(text)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("tcp://*:7100", "wildcard"),
        ("tcp://0.0.0.0:7100", "wildcard"),
        ("tcp://[::]:7100", "wildcard"),
        ("tcp://192.168.2.2:7100", "address"),
        ("tcp://localhost:7100", "address"),
        ("tcp://[fd00::2]:7100", "address"),
        ("tcp://eth0:7100", "name"),
        ("tcp://veth-rov0:7100", "name"),
        ("ipc:///run/rovbus/x-1", "path"),
        ("inproc://x", "path"),
    ],
)
def test_bind_kinds(text: str, kind: str) -> None:
    assert parse_endpoint(text).bind_kind == kind


def test_an_endpoint_at_a_host_keeps_its_port() -> None:
    assert str(parse_endpoint("tcp://*:7100").at("192.168.2.2")) == "tcp://192.168.2.2:7100"
    assert str(parse_endpoint("tcp://eth0:7100").at(parse_address("fd00::2"))) == (
        "tcp://[fd00::2]:7100"
    )


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("192.168.2.2", "192.168.2.2"),
        ("fd00::2", "[fd00::2]"),
        ("[::1]", "[::1]"),
        ("rov-main.local", "rov-main.local"),
        ("localhost", "localhost"),
    ],
)
def test_host_addresses(text: str, address: str) -> None:
    assert parse_address(text) == address


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("*", "only a bind can use"),
        ("0.0.0.0", "only a bind can use"),
        ("::", "only a bind can use"),
        ("", "the host is empty"),
        ("300.1.1.1", "not a valid IPv4 address"),
        ("bad_host!", "is not an address"),
    ],
)
def test_bad_host_addresses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_address(text)


def test_collisions() -> None:
    a = parse_endpoint("tcp://127.0.0.1:7100")
    assert a.collides_with(parse_endpoint("tcp://localhost:7100"))
    assert a.collides_with(parse_endpoint("tcp://*:7100"))
    assert parse_endpoint("tcp://0.0.0.0:7100").collides_with(parse_endpoint("tcp://10.1.1.1:7100"))
    assert not a.collides_with(parse_endpoint("tcp://127.0.0.1:7101"))
    assert not a.collides_with(parse_endpoint("tcp://10.0.0.1:7100"))
    assert parse_endpoint("ipc:///a").collides_with(parse_endpoint("ipc:///a"))
    assert not parse_endpoint("ipc:///a").collides_with(parse_endpoint("inproc:///a"))


# -- problem wording ---------------------------------------------------------------------------


def test_format_key_path() -> None:
    assert format_key_path(["nodes", "thrusters", "buses", 0, "bitrate"]) == (
        "nodes.thrusters.buses[0].bitrate"
    )
    assert format_key_path(["nodes", "my node", "group"]) == 'nodes."my node".group'
    assert format_key_path(["security", "curve", "allowed_clients", 2]) == (
        "security.curve.allowed_clients[2]"
    )
    assert format_key_path([]) == "(top level)"


def test_describe_values_as_toml() -> None:
    assert describe("fast") == '"fast"'
    assert describe(True) == "true"
    assert describe(12) == "12"
    assert describe(0.5) == "0.5"
    assert describe({}) == "a table"
    assert describe([1]) == "an array"


NODE = """
[nodes.{name}]
group = "{group}"
[nodes.{name}.endpoints]
pub = "tcp://127.0.0.1:{p}0"
shell = "tcp://127.0.0.1:{p}1"
control = "tcp://127.0.0.1:{p}2"
stdin = "tcp://127.0.0.1:{p}3"
hb = "tcp://127.0.0.1:{p}4"
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_system(text, source="test.toml")
    assert caught.value.path == "test.toml"
    return caught.value.problems


def test_type_errors_say_what_was_expected() -> None:
    text = (
        '[system]\nname = "t"\nheartbeat_interval = "1s"\ndead_after = 0\n'
        "[groups.v]\n" + NODE.format(name="a", group="v", p=710) + "[[nodes.a.buses]]\n"
        'name = "can0"\ninterface = "virtual"\nchannel = true\nfd = "yes"\n'
        "queue_size = 1.5\nfilters = 3\nbatch = { max_delay_ms = -1 }\n"
    )
    assert problems_of(text) == [
        'system.heartbeat_interval: expected a number, got "1s"',
        "system.dead_after: expected a number at least 1, got 0",
        "nodes.a.buses[0].channel: expected a channel name or number, got true",
        'nodes.a.buses[0].fd: expected true or false, got "yes"',
        "nodes.a.buses[0].filters: expected an array, got 3",
        "nodes.a.buses[0].batch.max_delay_ms: expected a number at least 0, got -1",
        "nodes.a.buses[0].queue_size: expected an integer, got 1.5",
    ]


def test_all_problems_are_collected_across_layers() -> None:
    # a model error in node a, and whole-file errors elsewhere: all are reported at once
    text = (
        '[system]\nname = "t"\n[groups.v]\n'
        + NODE.format(name="a", group="v", p=710).replace('group = "v"', "group = 5")
        + NODE.format(name="b", group="nope", p=720)
        + NODE.format(name="c", group="v", p=720)
    )
    assert problems_of(text) == [
        "nodes.a.group: expected a string, got 5",
        "nodes.c.endpoints.pub: tcp://127.0.0.1:7200 is already used by nodes.b.endpoints.pub",
        "nodes.c.endpoints.shell: tcp://127.0.0.1:7201 is already used by nodes.b.endpoints.shell",
        "nodes.c.endpoints.control: tcp://127.0.0.1:7202 is already used by "
        "nodes.b.endpoints.control",
        "nodes.c.endpoints.stdin: tcp://127.0.0.1:7203 is already used by nodes.b.endpoints.stdin",
        "nodes.c.endpoints.hb: tcp://127.0.0.1:7204 is already used by nodes.b.endpoints.hb",
        'nodes.b.group: unknown group "nope"; known groups: "v"',
    ]


def test_unknown_keys_list_the_allowed_ones() -> None:
    problems = problems_of('[system]\nname = "t"\nnmae = "x"\n[sytem]\n')
    assert problems == [
        "system.nmae: unknown key; expected one of: name, serializer, heartbeat_interval, "
        "dead_after, max_message_size, max_prefix, max_subscriptions",
        "sytem: unknown key; expected one of: system, security, groups, hosts, nodes, forwarders",
    ]


def test_invalid_names_and_schemes() -> None:
    text = (
        '[system]\nname = "t"\n[security]\nkey_file = "k"\nsignature_scheme = "sha256"\n'
        '[groups."bad/group"]\n'
    )
    assert problems_of(text) == [
        'security.signature_scheme: expected "hmac-" and a hashlib digest name such as '
        '"hmac-sha256", got "sha256"'
    ]
    text = '[system]\nname = "t"\n[groups."bad/group"]\n'
    assert problems_of(text) == [
        'groups."bad/group": invalid name; expected a letter or digit, then letters, digits, '
        "'_' or '-' (it becomes a topic level)"
    ]


def test_relative_paths_resolve_against_base_dir(tmp_path: Path) -> None:
    text = '[system]\nname = "t"\n[groups.v]\n' + NODE.format(name="a", group="v", p=710)
    text = text.replace('group = "v"', 'group = "v"\nconnection_file = "run/a.json"')
    config = parse_system(text, base_dir=tmp_path)
    assert config.node("a").connection_file == tmp_path / "run" / "a.json"
    assert config.source is None


def test_models_are_frozen() -> None:
    config = parse_system('[system]\nname = "t"\n')
    with pytest.raises(ValueError, match="frozen"):
        config.system.name = "other"
