"""The client against a node daemon running in this process."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import zmq
import zmq.asyncio

from rovbus.client import BlockingClient, Client, RequestFailed, read_native_log
from rovbus.client.rbl import MAGIC, NativeLogWriter
from rovbus.config import SystemConfig
from rovbus.errors import ConfigError, NativeLogError, RequestTimeout
from rovbus.wire.canframe import CanFrame
from rovbus.wire.codec import DELIMITER, Codec
from tests.helpers.ports import free_ports


async def test_request_reply_error_and_timeout(node: tuple[SystemConfig, Path]) -> None:
    system, _ = node
    async with Client.from_system(system, "vehicle") as client:
        reply = await client.request("alpha", "node_info")
        assert reply.content["node"] == "alpha"
        with pytest.raises(RequestFailed) as failed:
            await client.request("alpha", "no_such")
        assert failed.value.ename == "UnknownRequest"
        assert failed.value.reply.content
        returned = await client.request("alpha", "no_such", check=False)
        assert returned.content["status"] == "error"
        with pytest.raises(ConfigError, match="reachable nodes: alpha"):
            await client.request("nobody", "node_info")
        await client.aclose()
        await client.aclose()  # idempotent


async def test_timeout_after_retries() -> None:
    (port,) = free_ports(1)
    async with Client.from_endpoints(request=f"tcp://127.0.0.1:{port}") as client:
        with pytest.raises(RequestTimeout, match="2 attempt"):
            await client.request("any", "node_info", timeout=0.1, retries=1)


async def test_send_frames_seen_on_subscription(node: tuple[SystemConfig, Path]) -> None:
    system, _ = node
    async with Client.from_system(system, "vehicle") as client:
        async with client.subscribe(["alpha/can/can0/"]) as sub:
            assert await sub.ready(timeout=5) == {"alpha"}
            frames = [CanFrame("x", 0x123, b"\x01"), "18FF0001#AABB"]
            assert await client.send_frames("alpha", "can0", frames) == 2
            got = [await asyncio.wait_for(sub.recv(), 5) for _ in range(2)]
        assert [m.topic for m in got] == ["alpha/can/can0/123", "alpha/can/can0/18FF0001"]
        assert got[0].content["dir"] == "tx"
        assert got[1].content["data"] == b"\xaa\xbb"


async def test_node_table(node: tuple[SystemConfig, Path]) -> None:
    system, _ = node
    async with Client.from_system(system, "vehicle") as client:
        (row,) = await client.node_table(wait=5)  # returns once rx rates are known
        assert row.node == "alpha"
        assert row.state == "alive"
        assert row.group == "vehicle"
        assert row.buses[0].name == "can0"
        assert row.rx_rate is not None


async def test_blocking_client_in_thread(node: tuple[SystemConfig, Path]) -> None:
    _, path = node

    def script() -> tuple[str, int]:
        with BlockingClient.from_system(path, "vehicle") as client:
            info = client.request("alpha", "kernel_info")
            with client.subscribe(["alpha/hb"]) as sub:
                hb = sub.recv(timeout=5)
            return info.content["implementation"], hb.content["seq"]

    implementation, seq = await asyncio.to_thread(script)
    assert implementation == "rovbus"
    assert seq >= 0


async def test_routed_request_carries_node_and_channel() -> None:
    """Through a forwarder, [node, channel] precede the delimiter; the reply comes back
    without them (a stand-in forwarder plays the node)."""
    (port,) = free_ports(1)
    endpoint = f"tcp://127.0.0.1:{port}"
    ctx = zmq.asyncio.Context()
    router = ctx.socket(zmq.ROUTER)
    router.bind(endpoint)
    codec = Codec(username="fwd")
    try:
        async with Client.from_endpoints(request=endpoint, routed=True) as client:
            pending = asyncio.create_task(client.request("beta", "tx_off", channel="control"))
            frames = await asyncio.wait_for(router.recv_multipart(), 5)
            peer, node, channel = frames[:3]
            assert (node, channel, frames[3]) == (b"beta", b"control", DELIMITER)
            request = codec.decode(frames[1:])
            reply = codec.message(
                "tx_off_reply", {"status": "ok"}, parent=request, identities=(peer,)
            )
            await router.send_multipart(codec.encode(reply))
            assert (await pending).content == {"status": "ok"}
    finally:
        router.close(0)
        ctx.term()


def test_native_log_round_trip_and_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "x.rbl"
    writer = NativeLogWriter(path, system="t", prefixes=["a/"])
    writer.write([b"a/hb", DELIMITER, b"sig"], 1.5)
    writer.write([b"a/x", b"\x00\xff"], 2.5)
    writer.close()
    header, records = read_native_log(path)
    assert header["system"] == "t"
    assert header["version"] == 1
    assert list(records) == [(1.5, [b"a/hb", DELIMITER, b"sig"]), (2.5, [b"a/x", b"\x00\xff"])]
    assert path.read_bytes().startswith(MAGIC)
    path.write_bytes(path.read_bytes()[:-3])  # killed mid-write
    assert [t for t, _ in read_native_log(path)[1]] == [1.5]
    (tmp_path / "no.rbl").write_bytes(b"not a log")
    with pytest.raises(NativeLogError):
        read_native_log(tmp_path / "no.rbl")


async def test_closing_a_subscription_ends_an_iteration_that_waits() -> None:
    """Another task closing it ends ``async for``, instead of cancelling the iterating task."""
    ports = free_ports(2)
    pubs = [f"tcp://127.0.0.1:{port}" for port in ports]
    async with Client.from_endpoints(pub=pubs) as client:
        sub = client.subscribe([""])

        async def collect() -> list[object]:
            return [msg async for msg in sub]

        iterating = asyncio.create_task(collect())
        await asyncio.sleep(0)  # it runs until it waits for a message
        assert not iterating.done()
        sub.close()
        assert await asyncio.wait_for(iterating, 5) == []
