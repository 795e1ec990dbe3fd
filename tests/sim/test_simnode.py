"""A node with simulated devices: operator setpoints reach the thrusters, faults are seen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import zmq.asyncio

from rovbus.config import load_system
from rovbus.node.daemon import NodeDaemon
from rovbus.sim import SimNode, demo_database
from rovbus.transport import Requester, Subscriber
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from tests.node.running import wait_for
from tests.sim.devicefiles import sim_node_toml


class Running:
    def __init__(self, node: SimNode, ctx: zmq.asyncio.Context) -> None:
        self.node = node
        self.ctx = ctx
        self.codec = Codec(username="tester")
        self.config = node.daemon.config

    async def request(
        self, msg_type: str, content: dict[str, Any] | None = None, channel: str = "shell"
    ) -> Message:
        req = Requester(self.ctx, str(getattr(self.config.endpoints, channel)), self.codec)
        try:
            return await req.request(self.codec.message(msg_type, content or {}), timeout=5)
        finally:
            req.close()

    async def subscribed(self, *prefixes: str) -> Subscriber:
        sub = Subscriber(
            self.ctx,
            [str(self.config.endpoints.pub)],
            self.codec,
            [f"{self.node.name}/", *prefixes],
        )
        await wait_for(sub, lambda m: m.msg_type == "heartbeat")
        return sub


@pytest.fixture
async def sim_node(write_system) -> AsyncIterator[Callable[..., Any]]:  # type: ignore[no-untyped-def]
    started: list[tuple[SimNode, asyncio.Task[None], zmq.asyncio.Context]] = []

    async def start(buses: dict[str, str], helm: str = "") -> Running:
        table = sim_node_toml("alpha", buses, iopub=False) + (f"helm = {helm}\n" if helm else "")
        system = load_system(write_system(table))
        node = SimNode(system, "alpha")
        await node.start()
        task = asyncio.create_task(node.serve())
        ctx = zmq.asyncio.Context()
        started.append((node, task, ctx))
        return Running(node, ctx)

    yield start
    for node, task, ctx in started:
        node.request_stop()
        await asyncio.wait_for(task, 5)
        await node.aclose()
        ctx.destroy(linger=0)


def _rx(beat: Message, bus: str = "can0") -> int:
    value: int = beat.content["buses"][bus]["rx"]
    return value


async def _beats(sub: Subscriber, count: int = 2) -> list[Message]:
    return [await wait_for(sub, lambda m: m.msg_type == "heartbeat") for _ in range(count)]


async def _faults_until(
    running: Running, check: Callable[[dict[str, int]], bool], timeout: float = 5.0
) -> dict[str, Any]:
    """``sim_status_request``'s can0 once its fault counters pass ``check``."""
    async with asyncio.timeout(timeout):
        while True:
            stats = await running.request("sim_status_request")
            bus: dict[str, Any] = stats.content["buses"]["can0"]
            if check(bus["faults"]):
                return bus
            await asyncio.sleep(0.05)


async def test_operator_setpoint_moves_a_thruster(sim_node) -> None:
    running = await sim_node({"can0": '[{ kind = "thrusters", count = 2, rate_hz = 50 }]'})
    sub = await running.subscribed()
    status = demo_database().get_message_by_name("ThrusterStatus0")
    try:
        reply = await running.request("can_send_request", {"bus": "can0", "frames": ["201#DC05"]})
        assert reply.content["status"] == "ok"

        def at_speed(m: Message) -> bool:
            if m.msg_type != "can_frame" or m.content["id"] != 0x221:
                return False
            return abs(status.decode(m.content["data"])["Rpm"] - 1500) < 50

        await wait_for(sub, at_speed, timeout=5)
    finally:
        sub.close()


async def test_thrusters_behind_a_helm_go_to_0_rpm_when_the_holder_stops_sending(
    sim_node,
) -> None:
    running = await sim_node(
        {"can0": '[{ kind = "thrusters", count = 2, rate_hz = 50 }]'},
        helm='{ ids = ["0x200-0x20F"], failsafe = ["200#0000", "201#0000", "210#01"], '
        "lease_ms = 1000 }",
    )
    sub = await running.subscribed()
    status = demo_database().get_message_by_name("ThrusterStatus0")

    def rpm(m: Message) -> float | None:
        if m.msg_type != "can_frame" or m.content["id"] != 0x221:
            return None
        return float(status.decode(m.content["data"])["Rpm"])

    try:
        refused = await running.request("can_send_request", {"bus": "can0", "frames": ["201#DC05"]})
        assert refused.content["ename"] == "HelmRefused"
        await running.request("helm_take_request", {}, channel="control")
        reply = await running.request("can_send_request", {"bus": "can0", "frames": ["201#DC05"]})
        assert reply.content["status"] == "ok"
        await wait_for(sub, lambda m: (rpm(m) or 0) > 500, timeout=5)  # spinning up
        # nothing renews the lease: it runs out and the failsafe stops the thruster
        await wait_for(sub, lambda m: rpm(m) == 0.0, timeout=5)
    finally:
        sub.close()


async def test_drop_corrupt_bus_off_and_device_stop_are_seen(sim_node) -> None:
    running = await sim_node({"can0": '[{ kind = "imu", rate_hz = 100 }]'})
    sub = await running.subscribed()
    try:
        # drop everything: the heartbeat's rx counter stands still
        reply = await running.request(
            "sim_fault_request", {"bus": "can0", "fault": "drop", "value": 1.0}
        )
        assert reply.content["faults"]["drop"] == 1.0
        first, second = await _beats(sub)
        assert _rx(second) - _rx(first) <= 2  # one in flight at most
        await running.request("sim_fault_request", {"bus": "can0", "fault": "clear"})
        first, second = await _beats(sub)
        assert _rx(second) - _rx(first) >= 5

        # corrupt every frame: payloads differ from what the device sends; counted
        await running.request(
            "sim_fault_request", {"bus": "can0", "fault": "corrupt", "value": 1.0}
        )
        bus = await _faults_until(running, lambda f: f["corrupted"] > 5)
        assert bus["faults"]["dropped"] > 5
        assert bus["devices"][0]["kind"] == "imu"
        await running.request("sim_fault_request", {"bus": "can0", "fault": "clear"})

        # bus-off: the port fails, the node says so and is degraded; recover: back to ok
        await running.request("sim_fault_request", {"bus": "can0", "fault": "bus-off"})
        failed = await wait_for(sub, lambda m: m.msg_type == "bus_status")
        assert (failed.content["bus"], failed.content["state"]) == ("can0", "failed")
        assert "bus-off" in failed.content["error"]
        degraded = await wait_for(sub, lambda m: m.msg_type == "heartbeat")
        assert degraded.content["state"] == "degraded"
        await running.request("sim_fault_request", {"bus": "can0", "fault": "recover"})
        back = await wait_for(
            sub, lambda m: m.msg_type == "bus_status" and m.content["state"] == "ok", timeout=10
        )
        assert back.content["bus"] == "can0"
        await wait_for(sub, lambda m: m.msg_type == "can_frame")

        # a stopped device sends nothing; started again, it does
        reply = await running.request(
            "sim_device_request", {"bus": "can0", "device": "imu", "action": "stop"}
        )
        assert reply.content["running"] is False
        # frames already on their way may still arrive: then two beats in a row agree
        for _ in range(10):
            first, second = await _beats(sub)
            if _rx(second) == _rx(first):
                break
        assert _rx(second) == _rx(first), "frames still arrive from a stopped device"
        reply = await running.request(
            "sim_device_request", {"bus": "can0", "device": 0, "action": "start"}
        )
        assert reply.content["running"] is True
        await wait_for(sub, lambda m: m.msg_type == "can_frame")

        # bad requests are error replies
        for content in (
            {"bus": "nope", "fault": "drop", "value": 0.1},
            {"bus": "can0", "fault": "melt"},
            {"bus": "can0", "fault": "drop", "value": 2},
        ):
            reply = await running.request("sim_fault_request", content)
            assert reply.content["status"] == "error"
    finally:
        sub.close()


async def test_delay_holds_frames(sim_node) -> None:
    running = await sim_node({"can0": '[{ kind = "imu", rate_hz = 50 }]'})
    sub = await running.subscribed()
    try:
        await running.request("sim_fault_request", {"bus": "can0", "fault": "delay", "value": 300})
        await _faults_until(running, lambda f: f["delayed"] > 5)
        await wait_for(sub, lambda m: m.msg_type == "can_frame")  # still flowing
    finally:
        sub.close()


def test_add_handler_rules(write_system) -> None:
    system = load_system(write_system(sim_node_toml("alpha", {"can0": "[]"})))
    daemon = NodeDaemon(system, "alpha")

    async def handler(request: Message) -> dict[str, Any]:
        return {"status": "ok"}

    with pytest.raises(ValueError, match="answers stats_request already"):
        daemon.add_handler("stats_request", handler)
    with pytest.raises(ValueError, match="_request"):
        daemon.add_handler("sim_fault", handler)
    with pytest.raises(ValueError, match="shell or control"):
        daemon.add_handler("x_request", handler, channel="stdin")
    daemon.add_handler("x_request", handler, channel="control")
