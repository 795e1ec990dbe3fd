"""Helpers for the simulator tests: system files whose buses carry devices."""

from __future__ import annotations

from tests.sim.devicefiles import sim_node_toml, with_devices  # noqa: F401  (old import names)
