"""Names in the system file have a length limit, and a name at the limit works.

A 300-character node name used to pass check-config and then fail at start (its
connection file name too long). Names are checked for what they become: topic levels,
file names (NAME.json and its temporary copy), routing frames. The corpus file
``tests/configs/bad/node_name_too_long.toml`` has the 300-character case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rovbus.config import parse_system
from rovbus.config.checks import NAME_MAX
from rovbus.errors import ConfigError
from tests.helpers.daemons import node_process
from tests.helpers.systemfile import forwarder_toml, node_toml, system_toml


def system_with(*, group: str, node: str, forwarder: str, bus: str, system: str) -> str:
    table = node_toml(node, group).replace('name = "can0"', f'name = "{bus}"')
    text = system_toml(table, extra=forwarder_toml(forwarder, group, "topside"))
    text = text.replace("[groups.vehicle]", f"[groups.{group}]")
    return text.replace('name = "test"', f'name = "{system}"')


def test_names_at_the_limit_pass() -> None:
    longest = {key: key[0] * NAME_MAX for key in ("group", "node", "forwarder", "bus", "system")}
    config = parse_system(system_with(**longest))
    assert config.node(longest["node"]).buses[0].name == longest["bus"]


@pytest.mark.parametrize(
    ("field", "key_path"),
    [
        ("group", "groups.{name}"),
        ("node", "nodes.{name}"),
        ("forwarder", "forwarders.{name}"),
        ("bus", "nodes.{node}.buses[0].name"),
        ("system", "system.name"),
    ],
)
def test_a_name_past_the_limit_is_refused_naming_its_key(field: str, key_path: str) -> None:
    names = {"group": "vehicle", "node": "alpha", "forwarder": "tether", "bus": "can0"}
    names["system"] = "test"
    names[field] = "x" * (NAME_MAX + 1)
    with pytest.raises(ConfigError) as caught:
        parse_system(system_with(**names))
    where = key_path.format(name=names[field], node=names["node"])
    what = "bus name" if field == "bus" else "name"
    assert caught.value.problems == [
        f"{where}: {what} of {NAME_MAX + 1} characters is too long; at most {NAME_MAX} "
        "(it names topics, files and routing frames)"
    ]


def test_a_node_with_the_longest_name_starts_and_writes_its_connection_file(
    tmp_path: Path,
) -> None:
    name = "n" * NAME_MAX
    config = tmp_path / "system.toml"
    config.write_text(system_toml(node_toml(name)))
    with node_process(config, name, tmp_path) as (proc, systemd):
        systemd.wait_for("READY=1")
        assert (tmp_path / "rovbus" / f"{name}.json").is_file()
        assert proc.poll() is None
