"""Fixtures for forwarder tests: systems of nodes and forwarders as processes, a client outside."""

from __future__ import annotations

from tests.forwarder.systems import Outside, System, system_running, with_interval  # noqa: F401  (old import names)
from tests.helpers.waiting import eventually  # noqa: F401  (old import name)
