"""The client's helm, ``rovbus nodes`` and the demo's view of it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from rovbus.client import BlockingClient, BusRow, NodeRow
from rovbus.client.nodetable import helm_text
from rovbus.errors import HelmLost, HelmRefused
from rovbus.sim.view import render
from tests.helm.rig import Rig


def client_of(rig: Rig, username: str) -> BlockingClient:
    source = rig.node.system.source
    assert source is not None
    return BlockingClient.from_system(source, "vehicle", username=username)


def test_with_client_helm_send_renews_leaving_releases_and_a_take_over_is_lost(
    helm_rig: Callable[..., Rig],
) -> None:
    rig = helm_rig(lease_ms=60_000)  # what happens is not the lease running out
    rig.wire.all_failsafe_seen()
    alice, bob = client_of(rig, "alice"), client_of(rig, "bob")
    try:
        with alice.helm("prop") as helm:
            assert helm.send("can0", ["201#E803"]) == 1
            command = rig.wire.wait(lambda s: s.id == 0x201 and s.data == b"\xe8\x03")
            helm.renew()
            with pytest.raises(HelmRefused, match="held by alice"):
                bob.helm("prop").take()
        rig.wire.all_failsafe_seen(command)  # leaving the block released it
        with bob.helm("prop", "can0") as mine:
            mine.send("can0", ["202#E803"])
            taken = rig.wire.wait(lambda s: s.id == 0x202 and s.data == b"\xe8\x03")
            with alice.helm("prop", force=True, reason="bob is asleep") as again:
                with pytest.raises(HelmLost, match=r"taken over by alice at .*: bob is asleep"):
                    mine.send("can0", ["202#F401"])
                again.send("can0", ["203#E803"])
                rig.wire.wait(lambda s: s.id == 0x203, taken)
        assert not any(s.id == 0x202 and s.data == b"\xf4\x01" for s in rig.wire.frames())
    finally:
        alice.close()
        bob.close()


def test_the_heartbeats_helm_in_nodes_and_in_the_demo_view() -> None:
    assert helm_text(None) is None
    assert helm_text({"holder": "alice", "failsafe_active": False}) == "alice"
    assert helm_text({"holder": None, "failsafe_active": True}) == "failsafe"
    assert helm_text({"holder": None, "failsafe_active": False}) == "free"
    row = NodeRow(
        "propulsion", "vehicle", "alive", buses=(BusRow("can0", "ok", 1, 1, 0, True, helm="alice"),)
    )
    screen = render([row], {}, [], elapsed=1.0, title="demo")
    assert "HELM" in screen[2]
    assert screen[3].endswith("  alice"), screen[3]
