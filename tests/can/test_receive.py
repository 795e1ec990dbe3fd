"""CanPort receiving from a real python-can virtual bus."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable
from typing import Any

import can
import pytest
from can.interfaces import virtual
from can_helpers import WAIT_S, Collector, bus_config

from rovbus.can import CanPort
from rovbus.errors import CanFailed
from tests.helpers.frames import assert_holds

FRAMES = [
    can.Message(arbitration_id=0x123, data=b"\x01\x02\x03", is_extended_id=False),
    can.Message(arbitration_id=0x18FEF100, data=bytes(range(8)), is_extended_id=True),
    can.Message(arbitration_id=0x7FF, is_remote_frame=True, dlc=4, is_extended_id=False),
    can.Message(arbitration_id=0x000, data=b"", is_extended_id=False),
    can.Message(
        arbitration_id=0x1ABCDEF,
        data=bytes(range(12)),
        is_extended_id=True,
        is_fd=True,
        bitrate_switch=True,
        error_state_indicator=True,
    ),
    can.Message(arbitration_id=0x40, data=bytes(8), is_error_frame=True, is_extended_id=True),
]


async def test_frames_arrive_in_order_with_exact_fields(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    got = Collector()
    port = make_port(bus_config(channel, fd=True), got)
    await port.open()
    assert port.state == "ok"
    before = time.time()
    for msg in FRAMES:
        peer.send(msg)
    await got.wait_for(lambda: len(got.frames) == len(FRAMES))
    for msg, frame in zip(FRAMES, got.frames, strict=True):
        assert frame.bus == "main"
        assert frame.direction == "rx"
        assert_holds(frame, msg)
        assert before - 1 <= frame.timestamp <= time.time() + 1  # UTC epoch seconds
    stats = port.stats()
    assert stats.rx == len(FRAMES)
    assert stats.rx_bytes == sum(len(m.data) for m in FRAMES)
    assert stats.error_frames == 1
    assert stats.rx_dropped == 0
    # a message no CAN controller could carry is dropped and counted, the next one arrives
    peer.send(can.Message(arbitration_id=0x20000080, data=bytes(8), is_extended_id=True))
    peer.send(can.Message(arbitration_id=0x124, is_extended_id=False))
    await got.wait_for(lambda: len(got.frames) == len(FRAMES) + 1)
    assert got.frames[-1].arbitration_id == 0x124
    assert port.stats().rx_dropped == 1
    await port.aclose()


async def test_burst_of_20000_frames_arrives_complete_and_in_order(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    n = 20_000
    got = Collector()
    port = make_port(bus_config(channel), got)
    await port.open()

    def blast() -> None:
        for i in range(n):
            peer.send(
                can.Message(
                    arbitration_id=i & 0x7FF, data=i.to_bytes(4, "big"), is_extended_id=False
                )
            )

    await asyncio.to_thread(blast)
    await got.wait_for(lambda: len(got.frames) >= n, timeout=30)
    assert [int.from_bytes(f.data, "big") for f in got.frames] == list(range(n))
    assert got.calls < n // 10  # handed over in bursts, not frame by frame
    assert port.stats().rx == n
    await port.aclose()


async def test_receive_filters_drop_what_they_should(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    got = Collector()
    config = bus_config(
        channel,
        filters=[
            {"id": 0x100, "mask": 0x7F0, "extended": False},  # 0x100-0x10F, standard only
            {"id": 0x18FF0000, "mask": 0x1FFF0000, "extended": True},
        ],
    )
    port = make_port(config, got)
    await port.open()
    wanted = [
        can.Message(arbitration_id=0x100, is_extended_id=False),
        can.Message(arbitration_id=0x10F, is_extended_id=False),
        can.Message(arbitration_id=0x18FF1234, is_extended_id=True),
    ]
    unwanted = [
        can.Message(arbitration_id=0x110, is_extended_id=False),
        can.Message(arbitration_id=0x7FF, is_extended_id=False),
        can.Message(arbitration_id=0x100, is_extended_id=True),
        can.Message(arbitration_id=0x18FE1234, is_extended_id=True),
    ]
    for msg in unwanted[:2] + wanted[:2] + unwanted[2:] + wanted[2:]:
        peer.send(msg)
    # a marker that passes the filters, sent last: once it arrives, every earlier frame
    # has been through the filters (the virtual bus keeps order)
    peer.send(can.Message(arbitration_id=0x10A, data=b"end", is_extended_id=False))
    await got.wait_for(lambda: any(f.data == b"end" for f in got.frames))
    ids = [(f.arbitration_id, f.is_extended_id) for f in got.frames]
    assert ids[-1] == (0x10A, False)
    received = ids[:-1]
    for msg in wanted:
        assert (msg.arbitration_id, msg.is_extended_id) in received
    for msg in unwanted:
        assert (msg.arbitration_id, msg.is_extended_id) not in received
    # filters can change at run time
    port.set_filters(None)
    peer.send(can.Message(arbitration_id=0x7FF, data=b"all", is_extended_id=False))
    await got.wait_for(lambda: got.frames[-1].data == b"all")
    await port.aclose()


async def test_aclose_is_idempotent_and_releases_the_bus(
    channel: str, make_port: Callable[..., CanPort]
) -> None:
    port = make_port(bus_config(channel), Collector())
    await port.open()
    assert len(virtual.channels[channel]) == 1
    await port.aclose()
    assert port.state == "closed"
    assert channel not in virtual.channels
    await port.aclose()
    await asyncio.gather(port.aclose(), port.aclose())
    assert port.state == "closed"


async def test_open_failure_raises_and_leaves_port_closed(
    channel: str, make_port: Callable[..., CanPort]
) -> None:
    def broken() -> can.BusABC:
        raise can.CanInterfaceNotImplementedError("no such adapter")

    port = make_port(bus_config(channel), Collector(), bus_factory=broken)
    with pytest.raises(CanFailed, match="no such adapter"):
        await port.open()
    assert port.state == "closed"
    await port.aclose()


async def test_bus_with_a_descriptor_is_read_with_add_reader(
    make_port: Callable[..., CanPort],
) -> None:
    """socketcan's path (``loop.add_reader``), shown with python-can's udp_multicast bus,
    which also has a descriptor (the kernel here has no vcan)."""
    udp = pytest.importorskip("can.interfaces.udp_multicast")
    group = udp.UdpMulticastBus.DEFAULT_GROUP_IPv4
    udp_port = random.randint(20_000, 60_000)
    try:
        peer = can.Bus(interface="udp_multicast", channel=group, port=udp_port)
    except Exception as exc:  # no multicast on this host
        pytest.skip(f"udp_multicast unavailable: {exc}")
    try:
        got = Collector()
        config = bus_config(group, interface="udp_multicast", options={"port": udp_port})
        port = make_port(config, got)
        await port.open()
        assert not [t for t in threading.enumerate() if t.name.startswith("rovbus-can-rx")]
        n = 200
        for i in range(n):
            peer.send(
                can.Message(arbitration_id=i, data=i.to_bytes(2, "big"), is_extended_id=False)
            )
        await got.wait_for(lambda: len(got.frames) >= n)
        assert [f.arbitration_id for f in got.frames] == list(range(n))
        await port.aclose()
    finally:
        peer.shutdown()


class CountingBus(virtual.VirtualBus):  # type: ignore[misc]
    """A virtual bus that sets ``drained`` when a receive waits after ``expect`` frames were
    read: the receive thread has handed on everything it read (it posts a burst before it
    waits again)."""

    def __init__(self, *args: Any, expect: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.expect = expect
        self.read = 0
        self.drained = threading.Event()

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        if self.read >= self.expect and (timeout is None or timeout > 0):
            self.drained.set()
        msg, filtered = super()._recv_internal(timeout)
        self.read += msg is not None
        return msg, filtered


async def test_a_full_backlog_drops_the_newest_frames_and_counts_them(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    backlog, sent = 50, 80
    bus = CountingBus(channel=channel, expect=sent)
    got = Collector()
    port = make_port(bus_config(channel), got, bus_factory=lambda: bus, rx_backlog=backlog)
    await port.open()
    for i in range(sent):
        peer.send(
            can.Message(arbitration_id=0x100, data=i.to_bytes(2, "big"), is_extended_id=False)
        )
    # the loop falls behind: it is held here while the receive thread reads every frame
    assert bus.drained.wait(WAIT_S), f"the receive thread read {bus.read} of {sent}"
    await got.wait_for(lambda: len(got.frames) >= backlog)
    # the oldest were kept, in order, with no hole before the gap; the rest were counted
    assert [int.from_bytes(f.data, "big") for f in got.frames] == list(range(backlog))
    stats = port.stats()
    assert (stats.rx, stats.rx_dropped) == (backlog, sent - backlog)
    peer.send(can.Message(arbitration_id=0x101, data=b"\xff", is_extended_id=False))
    await got.wait_for(lambda: len(got.frames) == backlog + 1)  # receiving goes on
    assert got.frames[-1].arbitration_id == 0x101
    assert port.stats().rx_dropped == sent - backlog
    await port.aclose()


@pytest.mark.parametrize(
    ("timestamps", "bus_time"),
    [("bus", True), ("host", False), ("auto", False)],
)
async def test_a_port_stamps_frames_with_the_time_source_it_was_given(
    channel: str, make_port: Callable[..., CanPort], timestamps: str, bus_time: bool
) -> None:
    got = Collector()
    port = make_port(bus_config(channel), got, timestamps=timestamps)
    await port.open()
    # an adapter stamping frames with its own clock: seconds since it started
    with can.Bus(interface="virtual", channel=channel, preserve_timestamps=True) as adapter:
        before = time.time()
        adapter.send(can.Message(arbitration_id=0x123, is_extended_id=False, timestamp=5.0))
        await got.wait_for(lambda: len(got.frames) == 1)
    if bus_time:
        assert got.frames[0].timestamp == 5.0
    else:  # auto: the adapter's clock is not epoch time
        assert before <= got.frames[0].timestamp <= time.time()
    await port.aclose()
