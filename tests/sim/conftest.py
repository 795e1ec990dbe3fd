"""Helpers for the simulator tests: system files whose buses carry devices."""

from __future__ import annotations

import pytest

from tests.conftest import node_toml


@pytest.fixture(autouse=True)
def _no_leaks(no_leaked_sockets: None) -> None:
    """Every sim test fails if it leaves a zmq socket open."""


def with_devices(table: str, bus: str, devices: str) -> str:
    """``node_toml`` output with ``devices = [...]`` added to the bus called ``bus``."""
    marker = f'name = "{bus}"\n'
    assert marker in table
    return table.replace(marker, marker + f"devices = {devices}\n", 1)


def sim_node_toml(name: str, buses: dict[str, str], **kwargs: object) -> str:
    """A node whose buses (name -> devices TOML array) carry simulated devices."""
    table = node_toml(name, buses=tuple(buses), **kwargs)  # type: ignore[arg-type]
    for bus, devices in buses.items():
        table = with_devices(table, bus, devices)
    return table
