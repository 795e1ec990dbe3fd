"""Fixtures for forwarder tests: systems of nodes and forwarders as processes, a client outside."""

from __future__ import annotations
