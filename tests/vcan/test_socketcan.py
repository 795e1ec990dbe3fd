"""python-can's socketcan interface and rovbus on real vcan interfaces.

Needs vcan0 (and vcan1 for the failure test); see tests/vcan/conftest.py. Each test uses
its own range of CAN IDs and kernel filters on its own buses, so traffic of something else
on the same vcan does not disturb it.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any

import can
import pytest
import zmq

from rovbus.can import CanPort
from rovbus.can.receive import bus_fileno
from rovbus.config import load_system
from rovbus.config.models import BusConfig
from rovbus.wire.canframe import CanFrame
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from tests.helpers.daemons import daemon_process
from tests.helpers.systemfile import node_toml, system_toml
from tests.helpers.waiting import eventually
from tests.vcan.links import ip_link

pytestmark = pytest.mark.vcan


def socketcan(channel: str = "vcan0", *ids: tuple[int, int]) -> can.BusABC:
    """A python-can socketcan bus; ``ids`` are (id, mask) kernel filters for 11-bit IDs."""
    filters = [{"can_id": i, "can_mask": m, "extended": False} for i, m in ids] or None
    return can.Bus(interface="socketcan", channel=channel, can_filters=filters)


def bus_config(channel: str, **fields: Any) -> BusConfig:
    return BusConfig.model_validate(
        {"name": "can0", "interface": "socketcan", "channel": channel, **fields}
    )


# -- (a) python-can alone --------------------------------------------------------------------


def test_python_can_round_trip_between_two_buses() -> None:
    with socketcan("vcan0", (0x500, 0x7F0)) as tx, socketcan("vcan0", (0x500, 0x7F0)) as rx:
        assert bus_fileno(rx) >= 0  # socketcan has a descriptor: rovbus will add_reader it
        sent = [
            can.Message(arbitration_id=0x501, data=b"\x01\x02\x03", is_extended_id=False),
            can.Message(arbitration_id=0x502, data=b"", is_extended_id=False),
            can.Message(arbitration_id=0x503, is_remote_frame=True, dlc=4, is_extended_id=False),
        ]
        for msg in sent:
            tx.send(msg)
        got = [rx.recv(2.0) for _ in sent]
        assert all(m is not None for m in got)
        assert [(m.arbitration_id, bytes(m.data), m.is_remote_frame) for m in got] == [
            (0x501, b"\x01\x02\x03", False),
            (0x502, b"", False),
            (0x503, b"", True),
        ]
        assert got[2].dlc == 4
        assert abs(got[0].timestamp - time.time()) < 5  # kernel timestamps are epoch time
        assert tx.recv(0.1) is None  # a socket does not receive its own frames by default


# -- (b) rovbus.can.CanPort on socketcan -----------------------------------------------------


async def test_port_receives_through_add_reader_and_transmits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()
    watched: list[int] = []
    add_reader = loop.add_reader

    def spy(fd: Any, callback: Callable[..., object], *args: Any) -> None:
        watched.append(fd)
        add_reader(fd, callback, *args)

    monkeypatch.setattr(loop, "add_reader", spy)
    frames: list[CanFrame] = []
    config = bus_config("vcan0", filters=[{"id": 0x510, "mask": 0x7F0}], tx_allow=["0x510-0x51F"])
    with socketcan("vcan0", (0x510, 0x7F0)) as peer:
        async with CanPort(config, frames.extend) as port:
            assert port.state == "ok"
            assert len(watched) == 1, "the socketcan bus was not watched with loop.add_reader"
            for i in range(20):
                peer.send(can.Message(arbitration_id=0x511, data=bytes([i]), is_extended_id=False))
            await eventually(lambda: len(frames) >= 20, what="20 frames received")
            assert [f.data[0] for f in frames] == list(range(20))
            assert {(f.bus, f.arbitration_id, f.direction) for f in frames} == {
                ("can0", 0x511, "rx")
            }
            assert abs(frames[0].timestamp - time.time()) < 5

            frames.clear()
            out = [
                CanFrame("can0", 0x512, b"\xca\xfe"),
                CanFrame("can0", 0x513, b"", is_remote_frame=True, dlc=2),
            ]
            assert await port.send(out) == 2
            seen = [await asyncio.to_thread(peer.recv, 2.0) for _ in out]
            assert [(m.arbitration_id, bytes(m.data), m.is_remote_frame) for m in seen] == [
                (0x512, b"\xca\xfe", False),
                (0x513, b"", True),
            ]
            # what the port sent is reported once, as tx; the kernel does not echo it as rx
            await asyncio.sleep(0.1)
            assert [(f.arbitration_id, f.direction) for f in frames] == [
                (0x512, "tx"),
                (0x513, "tx"),
            ]
            stats = port.stats()
            assert (stats.rx, stats.tx, stats.errors) == (20, 2, 0)


async def test_kernel_filters_from_the_config_drop_the_rest() -> None:
    frames: list[CanFrame] = []
    config = bus_config(
        "vcan0",
        filters=[
            {"id": 0x520, "mask": 0x7F8},  # 0x520-0x527, 11-bit only
            {"id": 0x18FF0520, "mask": 0x1FFFFFFF, "extended": True},  # one 29-bit ID
        ],
    )
    with socketcan("vcan0") as peer:
        async with CanPort(config, frames.extend) as port:
            sends = [
                (0x521, False),  # passes
                (0x528, False),  # outside the range
                (0x521, True),  # same number, but 29-bit: the 11-bit filter does not take it
                (0x18FF0520, True),  # passes
                (0x18FF0521, True),  # dropped
                (0x527, False),  # passes: the last one, so all before it were handled
            ]
            for arbitration_id, extended in sends:
                peer.send(can.Message(arbitration_id=arbitration_id, is_extended_id=extended))
            await eventually(
                lambda: any(f.arbitration_id == 0x527 for f in frames), what="the last frame"
            )
            await asyncio.sleep(0.1)
            assert [(f.arbitration_id, f.is_extended_id) for f in frames] == [
                (0x521, False),
                (0x18FF0520, True),
                (0x527, False),
            ]
            # dropped in the kernel: the port never saw them
            assert port.stats().rx == 3


async def test_fd_frames_when_the_interface_takes_them() -> None:
    if _mtu("vcan0") < 72:
        pytest.skip("vcan0 carries classic CAN only (MTU 16); tools/vcan-up.sh sets MTU 72")
    frames: list[CanFrame] = []
    config = bus_config(
        "vcan0", fd=True, filters=[{"id": 0x570, "mask": 0x7F0}], tx_allow=["0x570-0x57F"]
    )
    peer = can.Bus(
        interface="socketcan",
        channel="vcan0",
        fd=True,
        can_filters=[{"can_id": 0x570, "can_mask": 0x7F0, "extended": False}],
    )
    with peer:
        async with CanPort(config, frames.extend) as port:
            data = bytes(range(48))
            peer.send(
                can.Message(
                    arbitration_id=0x571,
                    data=data,
                    is_fd=True,
                    bitrate_switch=True,
                    is_extended_id=False,
                )
            )
            await eventually(lambda: len(frames) >= 1, what="an FD frame")
            (got,) = frames
            assert (got.arbitration_id, got.data, got.is_fd, got.bitrate_switch) == (
                0x571,
                data,
                True,
                True,
            )
            await port.send([CanFrame("can0", 0x572, bytes(12), is_fd=True)])
            msg = await asyncio.to_thread(peer.recv, 2.0)
            assert msg is not None
            assert (msg.arbitration_id, len(msg.data), msg.is_fd) == (0x572, 12, True)


def _mtu(interface: str) -> int:
    return int(Path("/sys/class/net", interface, "mtu").read_text())


async def test_interface_down_fails_the_port_and_it_reopens_by_itself(link_admin: None) -> None:
    frames: list[CanFrame] = []
    states: list[str] = []
    config = bus_config("vcan1", filters=[{"id": 0x530, "mask": 0x7F0}], tx_allow=["0x530"])
    port = CanPort(
        config,
        frames.extend,
        on_state=lambda p: states.append(p.state),
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
    )
    await port.open()
    try:
        with socketcan("vcan1", (0x530, 0x7F0)) as peer:
            ip_link("set", "vcan1", "down")
            try:
                await eventually(lambda: port.state == "failed", what="port failed")
                assert port.last_error is not None
                assert port.stats().errors >= 1
                with pytest.raises(Exception, match="failed"):
                    await port.send([CanFrame("can0", 0x530, b"\x01")])
                # socketcan opens on a down interface and fails at the first read: the
                # reopens back off (0.05, 0.1, 0.2, 0.2 s ...) rather than flap every 0.05 s
                before = port.stats().reopen_count
                await asyncio.sleep(1.0)
                assert port.stats().reopen_count - before <= 10
            finally:
                ip_link("set", "vcan1", "up")

            # reopened by itself: frames flow again both ways (keep sending: a socket bound
            # while the link was still down fails once more and is reopened again)
            async def received_again() -> None:
                while not any(f.arbitration_id == 0x531 for f in frames):
                    with suppress(can.CanError, OSError):  # ENETDOWN while it settles
                        peer.send(can.Message(arbitration_id=0x531, is_extended_id=False))
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(received_again(), 10)
            await eventually(lambda: port.state == "ok", what="port ok again")
            assert port.stats().reopen_count >= 1
            assert "failed" in states
            assert await port.send([CanFrame("can0", 0x530, b"\x02")]) == 1
            msg = await asyncio.to_thread(peer.recv, 2.0)
            while msg is not None and msg.arbitration_id != 0x530:
                msg = await asyncio.to_thread(peer.recv, 2.0)
            assert msg is not None
            assert bytes(msg.data) == b"\x02"
    finally:
        await port.aclose()
    assert port.state == "closed"


# -- (c, d) the node daemon as a process -----------------------------------------------------


def socketcan_node_toml(
    name: str, channel: str = "vcan0", tx_allow: str = '["0x540-0x55F"]'
) -> str:
    """One ``[nodes.NAME]`` table: fresh loopback ports, bus ``can0`` on socketcan ``channel``,
    receiving only 0x540-0x55F (so other traffic on the vcan stays out)."""
    return node_toml(
        name,
        iopub=False,
        tx_allow=tx_allow,
        interface="socketcan",
        channel=channel,
        bus_keys={"can0": "filters = [{ id = 0x540, mask = 0x7E0 }]"},
    )


def write_system(tmp_path: Path, *nodes: str) -> Path:
    path = tmp_path / f"system-{uuid.uuid4().hex[:6]}.toml"
    path.write_text(system_toml(*nodes, name="vcan-test"))
    return path


@contextmanager
def node_process(config: Path, name: str, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """``python -m rovbus node --config CONFIG NAME``, returned once it sent READY=1; it
    must exit 0 on SIGTERM."""
    with daemon_process("node", config, name, tmp_path) as (proc, systemd):
        systemd.wait_for("READY=1", timeout=30)
        yield proc
        proc.terminate()
        assert proc.wait(timeout=10) == 0


class NodeClient:
    """Plain zmq against one node: a SUB on its pub and a DEALER on its shell."""

    def __init__(self, config: Path, name: str, *prefixes: str) -> None:
        endpoints = load_system(config).node(name).endpoints
        self.name = name
        self.codec = Codec(username="vcan-test")
        ctx = zmq.Context.instance()
        self.sub = ctx.socket(zmq.SUB)
        for prefix in (*prefixes, f"{name}/hb"):
            self.sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        self.sub.connect(str(endpoints.pub))
        self.shell = ctx.socket(zmq.DEALER)
        self.shell.connect(str(endpoints.shell))
        # the subscription is in force once a heartbeat came through
        self.next_message(lambda m: m.msg_type == "heartbeat")

    def next_message(self, predicate: Callable[[Message], bool], timeout: float = 5.0) -> Message:
        deadline = time.monotonic() + timeout
        while self.sub.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            msg = self.codec.decode(self.sub.recv_multipart())
            if predicate(msg):
                return msg
        raise AssertionError(f"{self.name}: no matching message published within {timeout} s")

    def next_frame(self, direction: str, timeout: float = 5.0) -> CanFrame:
        msg = self.next_message(
            lambda m: m.msg_type == "can_frame" and m.content.get("dir") == direction, timeout
        )
        return CanFrame.from_content(msg.content)

    def request(self, msg_type: str, content: dict[str, Any], timeout: float = 5.0) -> Message:
        self.shell.send_multipart(self.codec.encode(self.codec.message(msg_type, content)))
        if not self.shell.poll(int(timeout * 1000)):
            raise AssertionError(f"{self.name}: no {msg_type} reply within {timeout} s")
        return self.codec.decode(self.shell.recv_multipart())

    def close(self) -> None:
        self.sub.close(linger=0)
        self.shell.close(linger=0)


def test_node_publishes_vcan_frames_and_transmits_requests(tmp_path: Path) -> None:
    config = write_system(tmp_path, socketcan_node_toml("alpha"))
    with ExitStack() as stack:
        stack.enter_context(node_process(config, "alpha", tmp_path))
        client = NodeClient(config, "alpha", "alpha/can/can0/54")
        stack.callback(client.close)
        peer = stack.enter_context(socketcan("vcan0", (0x540, 0x7C0)))  # 0x540-0x57F

        peer.send(can.Message(arbitration_id=0x541, data=b"\x11\x22", is_extended_id=False))
        frame = client.next_frame("rx")
        assert (frame.bus, frame.arbitration_id, frame.data) == ("can0", 0x541, b"\x11\x22")
        assert abs(frame.timestamp - time.time()) < 5

        reply = client.request("can_send_request", {"bus": "can0", "frames": ["542#CAFE"]})
        assert reply.msg_type == "can_send_reply"
        assert reply.content["status"] == "ok", reply.content
        assert reply.content["sent"] == 1
        msg = peer.recv(5.0)
        assert msg is not None
        assert (msg.arbitration_id, bytes(msg.data)) == (0x542, b"\xca\xfe")
        tx = client.next_frame("tx")
        assert (tx.arbitration_id, tx.data) == (0x542, b"\xca\xfe")

        refused = client.request("can_send_request", {"bus": "can0", "frames": ["560#01"]})
        assert refused.content["status"] == "error"  # outside tx_allow: nothing on the wire
        assert peer.recv(0.3) is None


def test_two_nodes_on_one_vcan(tmp_path: Path) -> None:
    config = write_system(tmp_path, socketcan_node_toml("alpha"), socketcan_node_toml("beta"))
    with ExitStack() as stack:
        stack.enter_context(node_process(config, "alpha", tmp_path))
        stack.enter_context(node_process(config, "beta", tmp_path))
        alpha = NodeClient(config, "alpha", "alpha/can/can0/")
        stack.callback(alpha.close)
        beta = NodeClient(config, "beta", "beta/can/can0/")
        stack.callback(beta.close)

        frames = ["550#01", "551#0203", "552#"]
        reply = alpha.request("can_send_request", {"bus": "can0", "frames": frames})
        assert reply.content["status"] == "ok", reply.content
        got = [beta.next_frame("rx") for _ in frames]
        assert [(f.arbitration_id, f.data) for f in got] == [
            (0x550, b"\x01"),
            (0x551, b"\x02\x03"),
            (0x552, b""),
        ]
        # and back: beta transmits, alpha receives
        reply = beta.request("can_send_request", {"bus": "can0", "frames": ["553#BEEF"]})
        assert reply.content["status"] == "ok", reply.content
        frame = alpha.next_frame("rx")
        assert (frame.arbitration_id, frame.data) == (0x553, b"\xbe\xef")
