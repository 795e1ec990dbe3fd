"""Helpers for the simulator tests: system files whose buses carry devices."""

from __future__ import annotations
