"""Nodes that die or hang behind a forwarder, and the forwarder's own lifecycle."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import pytest

from tests.forwarder.systems import Outside, System, system_running
from tests.helpers.systemfile import forwarder_toml, node_toml, system_toml

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def vehicle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp("failures")
    path = tmp / "system.toml"
    path.write_text(system_toml(node_toml("alpha"), node_toml("beta"), forwarder_toml("tether")))
    with system_running(
        path, tmp, ["alpha", "beta"], ["tether"], ("--request-timeout", str(TIMEOUT))
    ) as system:
        yield system


@pytest.fixture
async def outside(vehicle: System) -> Iterator[Outside]:  # type: ignore[misc]
    client = Outside(vehicle.config, "tether")
    yield client
    client.close()


async def test_a_hung_node_gets_an_error_reply_after_the_timeout(
    vehicle: System, outside: Outside
) -> None:
    assert (await outside.request("beta", "node_info_request")).content["status"] == "ok"
    beta = vehicle.proc("beta")
    beta.send_signal(signal.SIGSTOP)
    try:
        reply = await outside.request("beta", "node_info_request", timeout=10)
    finally:
        beta.send_signal(signal.SIGCONT)
    assert reply.msg_type == "node_info_reply"
    assert reply.content["status"] == "error"
    assert reply.content["ename"] == "NodeUnreachable"
    assert "'beta'" in reply.content["evalue"]
    assert "did not answer" in reply.content["evalue"]
    # an answer when the forwarder's timer ran out, not silence
    assert (await outside.stats())["requests"]["timeouts"] >= 1
    # beta catches up: it answers the request late (dropped, counted), and the next one
    assert (await outside.request("beta", "node_info_request")).content["status"] == "ok"


async def test_a_killed_node_gets_error_replies(vehicle: System, outside: Outside) -> None:
    assert (await outside.request("alpha", "node_info_request")).content["status"] == "ok"
    alpha = vehicle.proc("alpha")
    alpha.kill()
    alpha.wait(timeout=5)
    for _ in range(2):
        reply = await outside.request("alpha", "node_info_request", timeout=10)
        assert reply.content["status"] == "error"
        assert reply.content["ename"] == "NodeUnreachable"
        assert "'alpha'" in reply.content["evalue"]
    # the others are unaffected
    assert (await outside.request("beta", "node_info_request")).content["status"] == "ok"


async def test_sigterm_stops_the_forwarder_cleanly(vehicle: System, outside: Outside) -> None:
    proc, systemd = vehicle.procs["tether"]
    ready = systemd.wait_for("READY=1")
    assert any(line.startswith("STATUS=tether (vehicle -> topside)") for line in ready.splitlines())
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(proc.wait, 5) == 0
    systemd.wait_for("STOPPING=1")
