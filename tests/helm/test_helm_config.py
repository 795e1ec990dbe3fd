"""The helm table in the system file: check-config names the key at fault."""

from __future__ import annotations

import pytest

from rovbus.config import parse_system
from rovbus.errors import ConfigError
from tests.helpers.systemfile import node_toml, system_toml


def helm_system(helm: str, tx_allow: str = '["0x200-0x20F", "0x210"]') -> str:
    return system_toml(node_toml("prop", tx_allow=tx_allow) + f"helm = {helm}\n")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_system(text)
    return caught.value.problems


def test_a_helm_with_its_defaults() -> None:
    system = parse_system(helm_system('{ ids = ["0x200-0x20F"], failsafe = ["210#01"] }'))
    helm = system.node("prop").bus("can0").helm
    assert helm is not None
    assert (helm.lease_ms, helm.repeat_ms) == (500, 0)
    assert helm.needs_helm(0x201, False, b"\xe8\x03")
    assert not helm.needs_helm(0x210, False, b"\x01")  # not a helm ID
    assert not helm.needs_helm(0x201, True, b"\xe8\x03")  # the 29-bit ID is another


def test_a_failsafe_frame_outside_tx_allow_is_refused_naming_the_key() -> None:
    found = problems(helm_system('{ ids = ["0x200-0x20F"], failsafe = ["210#01", "300#00"] }'))
    assert found == [
        'nodes.prop.buses[0].helm.failsafe[1]: "300#00": 11-bit ID 0x300 is not in the '
        "tx_allow list of bus 'can0' (11-bit 0x200-0x210; 29-bit none); the node "
        "could not write it"
    ]


@pytest.mark.parametrize(
    ("frame", "says"),
    [
        ("2100#01", "3 hex digits (11-bit) or 8 (29-bit)"),
        ("210", 'has no "#"'),
        ("210#R", "classic data frame"),
        ("210##101", "classic data frame"),
        ("210#0", "pairs of hex digits"),
        ("210#000102030405060708", "at most 8"),
        ("800#01", "out of range"),
    ],
)
def test_a_bad_failsafe_frame_is_refused_naming_the_key(frame: str, says: str) -> None:
    (found,) = problems(helm_system(f'{{ ids = ["0x200"], failsafe = ["{frame}"] }}'))
    assert found.startswith("nodes.prop.buses[0].helm.failsafe[0]"), found
    assert says in found, found


@pytest.mark.parametrize(
    ("helm", "key"),
    [
        ('{ ids = ["0x200"], failsafe = [] }', "helm.failsafe"),
        ('{ ids = ["0x200"], failsafe = ["210#01"], lease_ms = 0 }', "helm.lease_ms"),
        ('{ ids = ["0x200"], failsafe = ["210#01"], repeat_ms = -1 }', "helm.repeat_ms"),
        ('{ ids = [], failsafe = ["210#01"] }', "helm.ids"),
        ('{ ids = ["0x200"], failsafe = ["210#01"], lease = 5 }', "helm.lease"),
    ],
)
def test_bad_helm_values_are_refused_naming_the_key(helm: str, key: str) -> None:
    found = problems(helm_system(helm))
    assert any(f"nodes.prop.buses[0].{key}" in p for p in found), found
