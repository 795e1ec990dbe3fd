"""Replays across nodes and across restarts, by an attacker on the vehicle network.

The attacker captures real signed requests as a man in the middle: a raw ROUTER bound
where a rovbus client sends them (the client's copy of the system file names it), which
keeps each request and relays it on, so it is carried out and answered. Then it sends the
identical frames again from raw DEALERs: to another node, through the forwarder by name to
another node, and to the same node after it restarted. Every node and forwarder is a
process; with signing, each must refuse, count, and not answer.

And ``max_age`` at a real node: a request dated long ago, or ahead of the node's clock by
more than ``max_skew``, is refused; a fresh one is answered.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from rovbus.client import Client
from rovbus.config import SystemConfig, load_system
from rovbus.transport import Subscriber
from rovbus.wire.codec import Codec
from tests.helpers.daemons import node_process, running
from tests.helpers.ports import free_ports
from tests.helpers.systemfile import forwarder_toml, node_toml, system_toml
from tests.helpers.waiting import eventually
from tests.node.running import wait_for
from tests.reliability.threads import signed_extra

INTERVAL = 0.2


@dataclass
class Vehicle:
    """alpha and beta in group vehicle, forwarder tether to topside, all signed, running."""

    path: Path
    system: SystemConfig
    ctx: zmq.asyncio.Context

    def endpoint(self, node: str, channel: str) -> str:
        return str(getattr(self.system.node(node).endpoints, channel))

    def dealer(self, endpoint: str) -> zmq.asyncio.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(endpoint)
        return sock

    def view(self, real: str, tmp_path: Path) -> tuple[ManInTheMiddle, Path]:
        """A man in the middle of ``real``, and a copy of the system file that sends what
        was meant for ``real`` to it."""
        mitm = ManInTheMiddle(self, real)
        view = tmp_path / "view.toml"
        view.write_text(self.path.read_text().replace(real, mitm.endpoint))
        return mitm, view


class ManInTheMiddle:
    """A raw ROUTER where the client sends and a raw DEALER to where it meant to send."""

    def __init__(self, vehicle: Vehicle, real: str) -> None:
        self.router = vehicle.ctx.socket(zmq.ROUTER)
        self.router.setsockopt(zmq.LINGER, 0)
        self.endpoint = f"tcp://127.0.0.1:{free_ports(1)[0]}"
        self.router.bind(self.endpoint)
        self.dealer = vehicle.dealer(real)

    async def relay_one(self) -> list[bytes]:
        """The next request: kept, relayed, its reply sent back; returns its frames as
        they came (without the ROUTER's identity of the client)."""
        client, *frames = await self.router.recv_multipart()
        await self.dealer.send_multipart(frames)
        reply = await self.dealer.recv_multipart()
        await self.router.send_multipart([client, *reply])
        return frames


async def rejected_at(client: Client, node: str, channel: str) -> int:
    """How many messages ``node`` has refused on ``channel`` (its stats_request)."""
    stats = await client.request(node, "stats", timeout=5)
    count: int = stats.content["sockets"][channel]["rejected"]
    return count


async def forwarder_rejected(vehicle: Vehicle, above: int = -1) -> int:
    """The forwarder's count of refused requests, from its heartbeats: the first above
    ``above``."""
    tether = vehicle.system.forwarder("tether")
    sub = Subscriber(
        vehicle.ctx, [str(tether.endpoints.pub)], Codec(vehicle.system.hmac_key()), ["tether/hb"]
    )
    try:
        beat = await wait_for(sub, lambda m: m.content["requests"]["rejected"] > above, 10)
    finally:
        sub.close()
    count: int = beat.content["requests"]["rejected"]
    return count


@pytest.fixture(scope="module")
def vehicle_system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    tmp = tmp_path_factory.mktemp("replay")
    path = tmp / "system.toml"
    nodes = (node_toml("alpha"), node_toml("beta"), forwarder_toml("tether"))
    path.write_text(system_toml(*nodes, interval=INTERVAL, extra=signed_extra(tmp)))
    with running(path, tmp, ["alpha", "beta"], ["tether"]):
        yield path


@pytest.fixture
async def vehicle(vehicle_system: Path) -> AsyncIterator[Vehicle]:
    ctx = zmq.asyncio.Context()
    yield Vehicle(vehicle_system, load_system(vehicle_system), ctx)
    ctx.destroy(linger=0)


@pytest.mark.parametrize("captured_at", ["node", "forwarder"])
async def test_a_request_captured_on_its_way_to_one_node_is_refused_by_every_other(
    vehicle: Vehicle, tmp_path: Path, captured_at: str
) -> None:
    """tx_off for alpha, captured between the pilot and alpha's control (the pilot on the
    vehicle network) or between the pilot and the forwarder (the pilot topside), then sent
    unchanged to beta, straight and through the forwarder."""
    if captured_at == "node":
        real, group = vehicle.endpoint("alpha", "control"), "vehicle"
    else:
        real, group = str(vehicle.system.forwarder("tether").endpoints.request), "topside"
    mitm, view = vehicle.view(real, tmp_path)
    async with (
        Client.from_system(view, group, username="pilot") as pilot,
        Client.from_system(vehicle.path, "vehicle", username="observer") as observer,
    ):
        beta_before = await rejected_at(observer, "beta", "control")
        tether_before = await forwarder_rejected(vehicle)
        asked = asyncio.create_task(
            pilot.request("alpha", "tx_off", channel="control", timeout=10, retries=0)
        )
        captured = await mitm.relay_one()
        assert (await asked).content["tx_enabled"] is False  # alpha carried it out
        if captured_at == "forwarder":
            assert captured[:2] == [b"alpha", b"control"]
            captured = captured[2:]

        straight = vehicle.dealer(vehicle.endpoint("beta", "control"))
        await straight.send_multipart(captured)

        async def beta_refused() -> bool:
            return await rejected_at(observer, "beta", "control") > beta_before

        await eventually(beta_refused, what="beta to refuse alpha's request")

        routed = vehicle.dealer(str(vehicle.system.forwarder("tether").endpoints.request))
        await routed.send_multipart([b"beta", b"control", *captured])
        await forwarder_rejected(vehicle, above=tether_before)

        info = await observer.request("beta", "node_info")
        assert [bus["tx_enabled"] for bus in info.content["buses"]] == [True]
        assert await rejected_at(observer, "beta", "control") == beta_before + 1  # not passed on
        assert not await straight.poll(0)
        assert not await routed.poll(0)


async def test_connection_file_prints_the_key_of_the_nodes_current_start(
    vehicle: Vehicle,
) -> None:
    """What ``rovbus connection-file`` prints from topside is what alpha wrote: the key of
    its current start (learned from its heartbeat through the forwarder)."""
    cmd = [sys.executable, "-m", "rovbus", "connection-file", "--config", str(vehicle.path)]
    done = await asyncio.to_thread(
        subprocess.run, [*cmd, "alpha", "-g", "topside"], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    written = json.loads((vehicle.path.parent / "rovbus" / "alpha.json").read_text())
    assert printed == written
    assert printed["key"].encode() != vehicle.system.hmac_key()


async def test_a_request_captured_before_a_restart_is_refused_after_it(
    write_system: Any, tmp_path: Path
) -> None:
    """can_send 201#E803 (thruster 1 to 1000 rpm) captured on its way to alpha's shell and
    carried out; alpha restarts; the identical frames are sent again."""
    config = write_system(node_toml("alpha"), interval=INTERVAL, extra=signed_extra(tmp_path))
    vehicle = Vehicle(config, load_system(config), zmq.asyncio.Context())
    shell = vehicle.endpoint("alpha", "shell")
    mitm, view = vehicle.view(shell, tmp_path)
    observer = Client.from_system(config, "vehicle", username="observer")
    try:
        with node_process(config, "alpha", tmp_path) as (proc, systemd):
            systemd.wait_for("READY=1")
            before = (await observer.request("alpha", "node_info")).content["session"]
            async with Client.from_system(view, "vehicle", username="pilot") as pilot:
                frames = {"bus": "can0", "frames": ["201#E803"]}
                asked = asyncio.create_task(pilot.request("alpha", "can_send", frames, timeout=10))
                captured = await mitm.relay_one()
                assert (await asked).content["sent"] == 1
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(proc.wait, 10) == 0
        with node_process(config, "alpha", tmp_path) as (proc, systemd):
            systemd.wait_for("READY=1")
            # the observer follows alpha's heartbeats: a retry is signed for the new start
            info = await observer.request("alpha", "node_info", timeout=1, retries=5)
            assert info.content["session"] != before
            sent = observer.subscribe(["alpha/can/can0/201"])
            await sent.ready()
            attacker = vehicle.dealer(shell)
            await attacker.send_multipart(captured)

            async def refused() -> bool:
                return await rejected_at(observer, "alpha", "shell") > 0

            await eventually(refused, what="the restarted alpha to refuse the capture")
            # nothing went on the wire: the first 0x201 frame is the observer's own
            await observer.send_frames("alpha", "can0", ["201#0100"])
            frame = await asyncio.wait_for(sent.recv(), 5)
            assert frame.content["data"] == b"\x01\x00"
            assert not await attacker.poll(0)
    finally:
        await observer.aclose()
        vehicle.ctx.destroy(linger=0)


async def test_max_age_at_a_node_refuses_stale_and_future_dated_requests(
    write_system: Any, tmp_path: Path
) -> None:
    """A node process with max_age = 5 (max_skew 1, the default), sent kernel_info signed
    with the key its connection file holds, dated 60 s ago, an hour ahead, 3 s ahead and
    now, from a raw DEALER; each followed by a fresh stats_request on the same socket,
    which the node reads after it."""
    extra = signed_extra(tmp_path).rstrip() + "\nmax_age = 5.0\n\n"
    config = write_system(node_toml("alpha"), interval=INTERVAL, extra=extra)
    ctx = zmq.asyncio.Context()
    try:
        with node_process(config, "alpha", tmp_path) as (_, systemd):
            systemd.wait_for("READY=1")
            key = json.loads((tmp_path / "rovbus" / "alpha.json").read_text())["key"].encode()
            shell = ctx.socket(zmq.DEALER)
            shell.setsockopt(zmq.LINGER, 0)
            shell.connect(str(load_system(config).node("alpha").endpoints.shell))
            fresh = Codec(key, username="op")

            async def send(offset: float) -> tuple[list[str], int]:
                """Send kernel_info dated ``offset`` s from now, then stats: the types
                of the replies, and the shell's rejected count."""
                dated = Codec(key, username="op", clock=lambda: time.time() + offset)
                await shell.send_multipart(dated.encode(dated.message("kernel_info_request")))
                stats = fresh.message("stats_request")
                await shell.send_multipart(fresh.encode(stats))
                replies: list[str] = []
                while True:
                    assert await shell.poll(5000), "no reply to stats_request"
                    reply = fresh.decode(await shell.recv_multipart())
                    replies.append(reply.msg_type)
                    if reply.parent_header["msg_id"] == stats.msg_id:
                        return replies, reply.content["sockets"]["shell"]["rejected"]

            assert await send(-60.0) == (["stats_reply"], 1)  # stale
            assert await send(3600.0) == (["stats_reply"], 2)  # an hour ahead
            assert await send(3.0) == (["stats_reply"], 3)  # beyond the 1 s skew
            assert await send(0.5) == (["kernel_info_reply", "stats_reply"], 3)  # within
            assert await send(-4.0) == (["kernel_info_reply", "stats_reply"], 3)
    finally:
        ctx.destroy(linger=0)
