"""The node under a failing bus and under a key: it reports, refuses, and goes on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import can
import pytest
import zmq
import zmq.asyncio
from can.interfaces.virtual import VirtualBus

from rovbus.client import Client
from rovbus.config import load_system
from rovbus.errors import CanFailed, CanRefused, RequestFailed, RequestTimeout
from rovbus.node.daemon import NodeDaemon
from rovbus.transport import Requester, Subscriber
from rovbus.wire.codec import Codec
from tests.helpers.systemfile import node_toml
from tests.node.running import wait_for


class UnpluggableBus(VirtualBus):  # type: ignore[misc]
    """A virtual bus whose adapter can be pulled: receive raises, and so does reopening."""

    unplugged = threading.Event()

    def __init__(self, **kwargs: Any) -> None:
        if self.unplugged.is_set():
            raise can.CanInitializationError("no such adapter (unplugged)")
        super().__init__(**kwargs)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if self.unplugged.is_set():
            raise can.CanOperationError("adapter unplugged")
        return super()._recv_internal(min(timeout, 0.05) if timeout is not None else 0.05)


@pytest.fixture
async def unpluggable(write_system) -> AsyncIterator[NodeDaemon]:  # type: ignore[no-untyped-def]
    """Node ``alpha`` serving, its bus ``can0`` an :class:`UnpluggableBus`."""
    system = load_system(write_system(node_toml("alpha")))
    channel = system.node("alpha").bus("can0").channel
    UnpluggableBus.unplugged.clear()
    daemon = NodeDaemon(
        system, "alpha", bus_factories={"can0": lambda: UnpluggableBus(channel=channel)}
    )
    await daemon.start()
    serving = asyncio.create_task(daemon.serve())
    try:
        yield daemon
    finally:
        UnpluggableBus.unplugged.clear()
        daemon.request_stop()
        await serving
        await daemon.aclose()


async def test_failed_bus_is_reported_and_reopened_while_the_node_serves(
    unpluggable: NodeDaemon,
) -> None:
    ep = unpluggable.config.endpoints
    channel = unpluggable.config.bus("can0").channel
    ctx = zmq.asyncio.Context()
    codec = Codec()
    sub = Subscriber(ctx, [str(ep.pub)], codec, ["alpha/"])
    shell = Requester(ctx, str(ep.shell), codec)
    try:
        await wait_for(sub, lambda m: m.msg_type == "heartbeat")
        UnpluggableBus.unplugged.set()
        failed = await wait_for(sub, lambda m: m.msg_type == "bus_status")
        assert failed.content["bus"] == "can0"
        assert failed.content["state"] == "failed"
        assert "unplugged" in failed.content["error"]
        beat = await wait_for(
            sub,
            lambda m: m.msg_type == "heartbeat" and m.content["buses"]["can0"]["state"] != "ok",
        )
        assert beat.content["state"] == "degraded"
        # everything else goes on
        info = await shell.request(codec.message("kernel_info_request"), timeout=5)
        assert info.content["status"] == "ok"

        UnpluggableBus.unplugged.clear()
        back = await wait_for(
            sub, lambda m: m.msg_type == "bus_status" and m.content["state"] == "ok", timeout=10
        )
        assert back.content["bus"] == "can0"
        with can.Bus(interface="virtual", channel=channel) as device:
            device.send(can.Message(arbitration_id=0x321, data=b"\x07", is_extended_id=False))
            frame = await wait_for(sub, lambda m: m.msg_type == "can_frame")
        assert frame.content["id"] == 0x321
        stats = await shell.request(codec.message("stats_request"), timeout=5)
        assert stats.content["buses"]["can0"]["errors"] >= 1
        assert stats.content["buses"]["can0"]["reopen_count"] >= 1
    finally:
        sub.close()
        shell.close()
        ctx.term()


async def test_tx_off_survives_a_bus_that_fails_and_reopens(unpluggable: NodeDaemon) -> None:
    ep = unpluggable.config.endpoints
    channel = unpluggable.config.bus("can0").channel
    ctx = zmq.asyncio.Context()
    codec = Codec(username="op")
    sub = Subscriber(ctx, [str(ep.pub)], codec, ["alpha/hb", "alpha/status"])
    shell = Requester(ctx, str(ep.shell), codec)
    control = Requester(ctx, str(ep.control), codec)
    device = can.Bus(interface="virtual", channel=channel)
    try:
        await wait_for(sub, lambda m: m.msg_type == "heartbeat")
        off = await control.request(codec.message("tx_off_request"), timeout=5)
        assert off.content["tx_enabled"] is False
        UnpluggableBus.unplugged.set()
        await wait_for(sub, lambda m: m.msg_type == "bus_status" and m.content["state"] == "failed")
        UnpluggableBus.unplugged.clear()
        await wait_for(
            sub, lambda m: m.msg_type == "bus_status" and m.content["state"] == "ok", timeout=10
        )
        beat = await wait_for(
            sub,
            lambda m: m.msg_type == "heartbeat" and m.content["buses"]["can0"]["state"] == "ok",
        )
        assert beat.content["buses"]["can0"]["tx_enabled"] is False
        send = codec.message("can_send_request", {"bus": "can0", "frames": ["123#01"]})
        refused = await shell.request(send, timeout=5)
        assert refused.content["status"] == "error"
        assert "transmit disabled" in refused.content["evalue"]
        on = codec.message("tx_on_request", {"reason": "bus back, checked"})
        assert (await control.request(on, timeout=5)).content["tx_enabled"] is True
        send = codec.message("can_send_request", {"bus": "can0", "frames": ["124#02"]})
        assert (await shell.request(send, timeout=5)).content["sent"] == 1
        first = await asyncio.to_thread(device.recv, 5)
        assert first is not None
        assert first.arbitration_id == 0x124  # nothing went out while transmit was off
    finally:
        device.shutdown()
        sub.close()
        shell.close()
        control.close()
        ctx.term()


async def test_a_refused_and_a_failed_transmit_reach_the_client_as_their_classes(
    unpluggable: NodeDaemon,
) -> None:
    """The ``ename`` tells the operator's fault (refused) from the bus's (failed)."""
    ctx = zmq.asyncio.Context()
    sub = Subscriber(ctx, [str(unpluggable.config.endpoints.pub)], Codec(), ["alpha/"])
    try:
        async with Client.from_system(unpluggable.system, "vehicle") as client:
            with pytest.raises(RequestFailed) as refused:
                await client.send_frames("alpha", "can0", ["050#01"])  # not in tx_allow
            assert refused.value.ename == CanRefused.__name__
            assert "tx_allow" in refused.value.evalue
            await client.request("alpha", "tx_off", channel="control")
            with pytest.raises(RequestFailed) as off:
                await client.send_frames("alpha", "can0", ["123#01"])
            assert (off.value.ename, off.value.evalue) == (
                "CanRefused",
                "bus 'can0': transmit disabled",
            )
            await client.request("alpha", "tx_on", {"reason": "test"}, channel="control")

            await wait_for(sub, lambda m: m.msg_type == "heartbeat")
            UnpluggableBus.unplugged.set()
            await wait_for(
                sub, lambda m: m.msg_type == "bus_status" and m.content["state"] == "failed"
            )
            with pytest.raises(RequestFailed) as failed:
                await client.send_frames("alpha", "can0", ["123#01"])
            assert failed.value.ename == CanFailed.__name__
            assert "bus 'can0': bus is failed" in failed.value.evalue
    finally:
        sub.close()
        ctx.term()


@pytest.fixture
def signed_system(write_system, tmp_path: Path) -> Path:
    key = tmp_path / "hmac.key"
    key.write_text("a3f1c0de" * 8 + "\n")
    key.chmod(0o600)
    security = f'[security]\nkey_file = "{key}"\nsignature_scheme = "hmac-sha256"\n\n'
    return write_system(node_toml("alpha"), extra=security)  # type: ignore[no-any-return]


async def test_with_a_key_unsigned_and_forged_requests_are_dropped_and_counted(
    signed_system: Path,
) -> None:
    system = load_system(signed_system)
    daemon = NodeDaemon(system, "alpha")
    await daemon.start()
    serving = asyncio.create_task(daemon.serve())
    ctx = zmq.asyncio.Context()
    shell = str(system.node("alpha").endpoints.shell)
    operator = Codec(system.hmac_key(), username="op")
    good = operator.for_start("alpha", daemon.codec.session)
    wrongs = (
        Codec(username="nokey"),
        Codec(b"not the key", username="forger"),
        operator,  # the system key itself signs pub traffic, never a request
        operator.for_start("beta", daemon.codec.session),  # another node's key
        operator.for_start("alpha", "an-earlier-start"),  # this node's, before it restarted
    )
    try:
        for wrong in wrongs:
            req = Requester(ctx, shell, wrong)
            with pytest.raises(RequestTimeout):
                await req.request(wrong.message("kernel_info_request"), timeout=0.5)
            req.close()
        # a replay of a good request's exact frames is refused too
        req = Requester(ctx, shell, good)
        request = good.message("kernel_info_request")
        reply = await req.request(request, timeout=5)
        assert reply.content["implementation"] == "rovbus"
        raw = ctx.socket(zmq.DEALER)
        raw.connect(shell)
        await raw.send_multipart(good.encode(request))
        assert await raw.poll(500) == 0
        raw.close(linger=0)
        stats = await req.request(good.message("stats_request"), timeout=5)
        req.close()
        assert stats.content["sockets"]["shell"]["rejected"] == len(wrongs) + 1
    finally:
        daemon.request_stop()
        await serving
        await daemon.aclose()
        ctx.term()
