"""Fixtures for transport tests: leak checks."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_leaks(no_leaked_sockets: None) -> None:
    """Every transport test fails if it leaves a zmq socket open."""
