"""Fixtures for the helm tests (tests/helm/rig.py holds what they are made of)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import can
import pytest

from rovbus.config import load_system
from tests.helm.rig import HelmNode, Rig, Wire, helm_node_toml
from tests.reliability.threads import signed_extra


@pytest.fixture
def helm_rig(write_system, tmp_path: Path) -> Iterator[Callable[..., Rig]]:  # type: ignore[no-untyped-def]
    """``helm_rig(lease_ms=, repeat_ms=, signed=, slow=)``: a node with a helm, the wire
    watched from before it starts, and ``rig.peer(name)`` for clients."""
    rigs: list[Rig] = []

    def start(*, signed: bool = False, slow: float = 0.0, **helm: Any) -> Rig:
        path = write_system(
            helm_node_toml("prop", **helm), extra=signed_extra(tmp_path) if signed else ""
        )
        system = load_system(path)
        channel = str(system.node("prop").bus("can0").channel)
        wire = Wire(can.Bus(interface="virtual", channel=channel))
        rig = Rig(HelmNode(system, "prop", slow), wire, [])
        rigs.append(rig)
        return rig

    yield start
    for rig in rigs:
        for peer in rig.peers:
            peer.close()
        rig.node.join()
        rig.wire.close()
