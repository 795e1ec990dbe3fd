"""System files whose buses carry simulated devices."""

from __future__ import annotations

from tests.helpers.systemfile import node_toml


def with_devices(table: str, bus: str, devices: str) -> str:
    """``node_toml`` output with ``devices = [...]`` added to the bus called ``bus``."""
    marker = f'name = "{bus}"\n'
    assert marker in table
    return table.replace(marker, marker + f"devices = {devices}\n", 1)


def sim_node_toml(name: str, buses: dict[str, str], **kwargs: object) -> str:
    """A node whose buses (name -> devices TOML array) carry simulated devices."""
    keys = {bus: f"devices = {devices}" for bus, devices in buses.items()}
    return node_toml(name, buses=tuple(buses), bus_keys=keys, **kwargs)  # type: ignore[arg-type]
