"""CanPort transmitting: checks, queue, tx echo, disable and interrupt."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import can
import pytest
from can_helpers import WAIT_S, Collector, GatedBus, SteppedBus, bus_config

from rovbus.can import CanPort
from rovbus.can.stats import PortCounters
from rovbus.can.transmit import Transmitter, tx_refusal
from rovbus.config.txallow import TxAllowList
from rovbus.errors import CanRefused
from rovbus.wire.canframe import CanFrame
from rovbus.wire.origin import Origin


def frame(aid: int, data: bytes = b"\x01", **kw: object) -> CanFrame:
    return CanFrame("main", aid, data, **kw)  # type: ignore[arg-type]


async def recv(bus: can.BusABC) -> can.Message:
    msg = await asyncio.to_thread(bus.recv, WAIT_S)
    assert msg is not None, "nothing arrived on the wire"
    return msg


async def first_in_flight(
    make_port: Callable[..., CanPort],
    channel: str,
    bus: GatedBus,
    got: Collector | None = None,
    **port_args: Any,
) -> tuple[CanPort, asyncio.Task[int]]:
    """A port open on ``bus`` (its gate closed) whose send of frame 0x100 is inside
    ``bus.send``; the next sends queue behind it."""
    port = make_port(bus_config(channel), got or Collector(), bus_factory=lambda: bus, **port_args)
    await port.open()
    first = asyncio.create_task(port.send([frame(0x100)]))
    await bus.arrived()
    return port, first


async def test_send_puts_frames_on_the_wire_and_reports_them_as_tx(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    got = Collector()
    port = make_port(bus_config(channel, fd=True), got)
    await port.open()
    frames = [
        frame(0x100, b"\x01\x02"),
        frame(0x101, b"", is_remote_frame=True, dlc=3),
        frame(0x1A0, bytes(range(16)), is_fd=True, bitrate_switch=True),
    ]
    before = time.time()
    assert await port.send(frames) == 3
    for sent in frames:
        msg = await recv(peer)
        assert msg.arbitration_id == sent.arbitration_id
        assert bytes(msg.data) == sent.data
        assert msg.is_remote_frame == sent.is_remote_frame
        assert msg.dlc == sent.dlc
        assert msg.is_fd == sent.is_fd
        assert msg.bitrate_switch == sent.bitrate_switch
    await got.wait_for(lambda: len(got.tx()) == 3)
    for sent, echoed in zip(frames, got.tx(), strict=True):
        assert echoed.direction == "tx"
        assert before <= echoed.timestamp <= time.time()
        assert (echoed.arbitration_id, echoed.data, echoed.dlc) == (
            sent.arbitration_id,
            sent.data,
            sent.dlc,
        )
    stats = port.stats()
    assert (stats.tx, stats.tx_bytes, stats.tx_queued) == (3, 2 + 16, 0)
    await port.aclose()


async def test_allow_list_refusal_sends_nothing_and_names_the_frame(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    got = Collector()
    port = make_port(bus_config(channel, tx_allow=["0x100-0x10F"]), got)
    await port.open()
    with pytest.raises(CanRefused, match=r"frame 2 refused.*ID 0x200 is not in the tx_allow"):
        await port.send([frame(0x100), frame(0x10F), frame(0x200), frame(0x101)])
    with pytest.raises(CanRefused, match=r"frame 0 refused.*for bus 'other'"):
        await port.send([CanFrame("other", 0x100)])
    with pytest.raises(CanRefused, match=r"frame 1 refused.*: error frames cannot be transmitted$"):
        await port.send([frame(0x100), CanFrame("main", 0x100, is_error_frame=True)])
    # nothing went out: the next frame on the wire is the one sent now
    await port.send([frame(0x105, b"ok")])
    assert (await recv(peer)).arbitration_id == 0x105
    assert port.stats().tx == 1
    await port.aclose()


async def test_allow_list_checks_the_frame_format(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    allow = ["0x200-0x20F", "ext:0x18FF5000"]
    port = make_port(bus_config(channel, tx_allow=allow), Collector())
    await port.open()
    # 00000201 is another identifier than 201: on a real bus, another device
    with pytest.raises(
        CanRefused,
        match=r"frame 1 refused, nothing sent: 29-bit \(extended\) ID 0x00000201 is not in "
        r"the tx_allow list of 'main' \(11-bit 0x200-0x20F; 29-bit 0x18FF5000\); "
        r"the 11-bit ID 0x201 is allowed",
    ):
        await port.send([frame(0x200), frame(0x201, is_extended_id=True)])
    with pytest.raises(CanRefused, match=r"frame 0 refused.*11-bit \(standard\) ID 0x500"):
        await port.send([frame(0x500)])
    assert await port.send([frame(0x20F), frame(0x18FF5000, is_extended_id=True)]) == 2
    on_wire = [await recv(peer), await recv(peer)]  # and nothing before them
    assert [(m.arbitration_id, m.is_extended_id) for m in on_wire] == [
        (0x20F, False),
        (0x18FF5000, True),
    ]
    assert port.stats().tx == 2
    await port.aclose()


async def test_a_refusal_names_the_allowed_id_of_the_other_format(
    channel: str, make_port: Callable[..., CanPort]
) -> None:
    port = make_port(bus_config(channel, tx_allow=["ext:0x201"]), Collector())
    await port.open()
    with pytest.raises(
        CanRefused,
        match=r"11-bit \(standard\) ID 0x201 is not in the tx_allow list of 'main' \(11-bit none; "
        r"29-bit 0x00000201\); the 29-bit ID 0x00000201 is allowed, a different identifier on "
        r"the wire$",
    ):
        await port.send([frame(0x201)])
    assert port.stats().tx == 0
    await port.aclose()


async def test_a_long_tx_allow_list_is_cut_short_in_a_refusal(
    channel: str, make_port: Callable[..., CanPort]
) -> None:
    allow = [f"0x{0x100 + 2 * i:X}" for i in range(20)]  # 0x100, 0x102, ... 0x126
    port = make_port(bus_config(channel, tx_allow=allow), Collector())
    await port.open()
    shown = "11-bit 0x100, 0x102, 0x104, 0x106, 0x108, 0x10A, 0x10C, 0x10E, 0x110, 0x112, ..."
    with pytest.raises(CanRefused, match=re.escape(f"tx_allow list of 'main' ({shown})")):
        await port.send([frame(0x101)])
    await port.aclose()


@pytest.mark.parametrize(
    ("last", "shown"),
    [
        (
            "0x10E-0x10F",
            "11-bit 0x100, 0x102, 0x104, 0x106, 0x108, 0x10A, 0x10C, 0x10E-0x10F; 29-bit none",
        ),
        (
            "0x10E, 0x110",
            "11-bit 0x100, 0x102, 0x104, 0x106, 0x108, 0x10A, 0x10C, 0x10E, 0x110; 29-bit ...",
        ),
    ],
    ids=["80 characters: whole", "81: cut"],
)
def test_a_refusal_shows_a_tx_allow_list_of_up_to_80_characters_whole(
    last: str, shown: str
) -> None:
    first = ["0x100", "0x102", "0x104", "0x106", "0x108", "0x10A", "0x10C"]
    allow = TxAllowList.parse([*first, *last.split(", ")])
    why = tx_refusal(frame(0x101), "main", fd=False, allow=allow)
    assert why == f"11-bit (standard) ID 0x101 is not in the tx_allow list of 'main' ({shown})"


@pytest.mark.parametrize("tx_allow", [[], None], ids=["empty", "absent"])
async def test_a_bus_without_tx_allow_sends_nothing(
    channel: str,
    peer: can.BusABC,
    make_port: Callable[..., CanPort],
    tx_allow: list[str] | None,
) -> None:
    got = Collector()
    port = make_port(bus_config(channel, tx_allow=tx_allow), got)
    await port.open()
    for refused in (frame(0x000), frame(0x7FF), frame(0x0, is_extended_id=True)):
        with pytest.raises(
            CanRefused, match=r"frame 0 refused.*tx_allow list of 'main' \(nothing\)"
        ):
            await port.send([refused])
    with pytest.raises(CanRefused, match="frame 0 refused"):
        await port.send([frame(0x1FFFFFFF, is_extended_id=True)])
    stats = port.stats()
    assert (stats.tx, stats.tx_queued, stats.tx_errors) == (0, 0, 0)
    assert got.tx() == []
    assert peer.recv(timeout=0.2) is None
    await port.aclose()


async def test_fd_frame_refused_on_a_classic_bus(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    port = make_port(bus_config(channel, fd=False), Collector())
    await port.open()
    with pytest.raises(CanRefused, match=r"frame 1 refused.*CAN FD frame"):
        await port.send([frame(0x100), frame(0x101, bytes(12), is_fd=True)])
    assert port.stats().tx == 0
    await port.aclose()


async def test_one_send_of_more_frames_than_a_worker_run_goes_out_whole_in_order(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    port = make_port(bus_config(channel, queue_size=600), Collector())
    await port.open()
    ids = [i % 0x800 for i in range(300)]  # a worker run carries at most 256 frames
    async with asyncio.timeout(WAIT_S):
        assert await port.send([frame(i) for i in ids]) == 300
    assert [(await recv(peer)).arbitration_id for _ in ids] == ids
    assert port.stats().tx == 300
    await port.aclose()


async def test_queue_full_refuses_the_whole_call(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    gated = GatedBus(channel=channel, gated=True)
    port = make_port(bus_config(channel, queue_size=4), Collector(), bus_factory=lambda: gated)
    await port.open()
    first = asyncio.create_task(port.send([frame(0x100 + i) for i in range(4)]))
    await gated.arrived()  # frame 0 is inside bus.send, frames 1-3 wait
    assert port.stats().tx_queued == 3
    full = r"^bus 'main': transmit queue full \(3 of 4 frames queued, 2 more refused\)$"
    with pytest.raises(CanRefused, match=full):
        await port.send([frame(0x200), frame(0x201)])
    second = asyncio.create_task(port.send([frame(0x202)]))  # exactly fits
    await asyncio.sleep(0)  # one loop step: `second` queues its frame
    assert port.stats().tx_queued == 4
    gated.gate.set()
    assert await first == 4
    assert await second == 1
    ids = [(await recv(peer)).arbitration_id for _ in range(5)]
    assert ids == [0x100, 0x101, 0x102, 0x103, 0x202]
    assert port.stats().tx_dropped == 0
    await port.aclose()


async def test_disable_tx_drops_queued_and_refuses_new(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    gated = GatedBus(channel=channel, gated=True)
    got = Collector()
    port = make_port(bus_config(channel), got, bus_factory=lambda: gated)
    await port.open()
    pending = asyncio.create_task(port.send([frame(0x100 + i) for i in range(5)]))
    await gated.arrived()
    assert port.disable_tx() == 4
    assert port.stats().tx_enabled is False
    with pytest.raises(CanRefused, match=r"^bus 'main': transmit disabled$"):
        await pending
    with pytest.raises(CanRefused, match="transmit disabled"):
        await port.send([frame(0x300)])
    gated.gate.set()  # the frame that was already inside bus.send goes out
    assert (await recv(peer)).arbitration_id == 0x100
    port.enable_tx()
    assert await port.send([frame(0x301)]) == 1
    assert (await recv(peer)).arbitration_id == 0x301  # nothing dropped went out
    await got.wait_for(lambda: len(got.tx()) == 2)
    assert [f.arbitration_id for f in got.tx()] == [0x100, 0x301]
    stats = port.stats()
    assert (stats.tx, stats.tx_dropped) == (2, 4)
    await port.aclose()


async def test_drop_queued_interrupts_without_disabling(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    gated = GatedBus(channel=channel, gated=True)
    port = make_port(bus_config(channel), Collector(), bus_factory=lambda: gated)
    await port.open()
    one = asyncio.create_task(port.send([frame(0x100), frame(0x101)]))
    two = asyncio.create_task(port.send([frame(0x102)]))
    await gated.arrived()  # both tasks have run up to their await by now
    assert port.stats().tx_queued == 2
    assert port.drop_queued() == 2
    for task in (one, two):
        with pytest.raises(CanRefused, match=r"^bus 'main': transmit queue dropped \(interrupt\)$"):
            await task
    assert port.tx_enabled
    gated.gate.set()
    assert await port.send([frame(0x110)]) == 1
    assert [(await recv(peer)).arbitration_id for _ in range(2)] == [0x100, 0x110]
    assert port.stats().tx_dropped == 2
    await port.aclose()


async def test_cancelled_send_takes_its_frames_off_the_queue(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    gated = GatedBus(channel=channel, gated=True)
    port, first = await first_in_flight(make_port, channel, gated)
    second = asyncio.create_task(port.send([frame(0x101), frame(0x102)]))
    third = asyncio.create_task(port.send([frame(0x104)]))
    await asyncio.sleep(0)  # one loop step: `second` and `third` queue their frames
    assert port.stats().tx_queued == 3
    for cancelled in (second, third):
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
    stats = port.stats()
    assert (stats.tx_queued, stats.tx_dropped) == (0, 3)
    gated.gate.set()
    assert await first == 1
    assert await port.send([frame(0x103)]) == 1
    assert [(await recv(peer)).arbitration_id for _ in range(2)] == [0x100, 0x103]
    await port.aclose()


async def test_aclose_lets_queued_frames_finish_within_the_deadline(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    bus = SteppedBus(channel=channel)
    port = make_port(bus_config(channel), Collector(), bus_factory=lambda: bus)
    await port.open()
    first = asyncio.create_task(port.send([frame(0x100), frame(0x101)]))
    await bus.arrived()  # 0x100 is inside bus.send, 0x101 waits behind it
    withdrawn = asyncio.create_task(port.send([frame(0x102)]))
    await asyncio.sleep(0)  # one loop step: it queues its frame
    withdrawn.cancel()  # its caller gave up: 0x101 is still to go
    with pytest.raises(asyncio.CancelledError):
        await withdrawn
    closing = asyncio.create_task(port.aclose(deadline=WAIT_S))
    await asyncio.sleep(0)  # one loop step: the close has begun, draining what is queued
    bus.allow(2)
    await closing
    assert await first == 2
    assert [(await recv(peer)).arbitration_id for _ in range(2)] == [0x100, 0x101]
    assert peer.recv(timeout=0.2) is None
    with pytest.raises(CanRefused, match=r"^bus 'main': port is closed$"):
        await port.send([frame(0x100)])


async def test_aclose_drops_what_misses_the_deadline(
    channel: str, make_port: Callable[..., CanPort]
) -> None:
    gated = GatedBus(channel=channel, gated=True)
    port = make_port(bus_config(channel), Collector(), bus_factory=lambda: gated)
    await port.open()
    task = asyncio.create_task(port.send([frame(0x100), frame(0x101)]))
    await gated.arrived()
    closing = asyncio.create_task(port.aclose(deadline=0.05))
    with pytest.raises(CanRefused, match=r"^bus 'main': port closed$"):
        await task
    gated.gate.set()
    await closing
    assert port.state == "closed"
    assert port.stats().tx_dropped == 1


async def test_send_of_nothing_sends_nothing_and_a_non_frame_is_refused(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    port = make_port(bus_config(channel), Collector())
    with pytest.raises(CanRefused, match=r"^bus 'main': port is closed$"):  # not opened yet
        await port.send([frame(0x100)])
    await port.open()
    assert await port.send([]) == 0
    with pytest.raises(CanRefused, match=r"frame 1 refused.*: expected a CanFrame, got str$"):
        await port.send([frame(0x100), "100#01"])  # type: ignore[list-item]
    assert port.stats().tx == 0
    assert peer.recv(timeout=0.2) is None
    await port.aclose()


async def test_a_send_while_the_port_closes_is_refused(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    gated = GatedBus(channel=channel, gated=True)
    port, first = await first_in_flight(make_port, channel, gated)
    closing = asyncio.create_task(port.aclose(deadline=WAIT_S))
    await asyncio.sleep(0)  # one loop step: the close has begun, draining what is queued
    with pytest.raises(CanRefused, match=r"^bus 'main': port is closed$"):
        await port.send([frame(0x101)])
    gated.gate.set()
    await closing
    assert await first == 1
    assert (await recv(peer)).arbitration_id == 0x100
    assert peer.recv(timeout=0.2) is None  # and not the frame sent during the close
    assert port.stats().tx == 1


async def test_requests_queued_behind_a_frame_in_flight_go_out_in_order_each_reported(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    bus = SteppedBus(channel=channel)
    got = Collector()
    port, first = await first_in_flight(make_port, channel, bus, got)
    calls = [[0x101, 0x102], [0x103], [0x104, 0x105, 0x106]]
    later = [asyncio.create_task(port.send([frame(i) for i in ids])) for ids in calls]
    await asyncio.sleep(0)  # one loop step: they queue their frames
    assert port.stats().tx_queued == 6
    bus.allow(7)
    async with asyncio.timeout(WAIT_S):
        assert await asyncio.gather(first, *later) == [1, 2, 1, 3]
    on_wire = [await recv(peer) for _ in range(7)]
    assert [m.arbitration_id for m in on_wire] == list(range(0x100, 0x107))
    await got.wait_for(lambda: len(got.tx()) == 7)
    assert [f.arbitration_id for f in got.tx()] == list(range(0x100, 0x107))
    # each reported send time: after the frame went onto the wire, before the next did
    for echoed, sent, following in zip(got.tx(), on_wire, on_wire[1:], strict=False):
        assert sent.timestamp <= echoed.timestamp <= following.timestamp
    stats = port.stats()
    assert (stats.tx, stats.tx_bytes, stats.tx_queued, stats.tx_dropped) == (7, 7, 0, 0)
    await port.aclose()


async def test_each_frame_sent_carries_the_origin_of_its_own_request(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    """Requests sent in one run of the worker: each frame reported with its request's
    origin, a frame sent without one with none."""
    bus = SteppedBus(channel=channel)
    got = Collector()
    port, first = await first_in_flight(make_port, channel, bus, got)
    alice = Origin("alice", "msg-a", 1.0)
    node = Origin.own("alpha", "lease expired", at=2.0)
    calls = [([0x101, 0x102], alice), ([0x103], None), ([0x104], node)]
    later = [
        asyncio.create_task(port.send([frame(i) for i in ids], origin)) for ids, origin in calls
    ]
    await asyncio.sleep(0)  # one loop step: they queue their frames
    bus.allow(5)
    async with asyncio.timeout(WAIT_S):
        assert await asyncio.gather(first, *later) == [1, 2, 1, 1]
    for _ in range(5):
        await recv(peer)
    await got.wait_for(lambda: len(got.tx()) == 5)
    assert [(f.arbitration_id, f.origin) for f in got.tx()] == [
        (0x100, None),
        (0x101, alice),
        (0x102, alice),
        (0x103, None),
        (0x104, node),
    ]
    await port.aclose()


async def test_a_frame_failing_mid_run_fails_its_request_and_the_ones_after_it(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    bus = SteppedBus(channel=channel)
    bus.fail_ids.add(0x104)  # bus-off when the second frame of the second call is sent
    got = Collector()
    port, first = await first_in_flight(
        make_port, channel, bus, got, backoff_initial_s=60, backoff_max_s=60
    )
    calls = [[0x101, 0x102], [0x103, 0x104], [0x105]]
    later = [asyncio.create_task(port.send([frame(i) for i in ids])) for ids in calls]
    await asyncio.sleep(0)  # one loop step: they queue their frames
    bus.allow(6)
    async with asyncio.timeout(WAIT_S):
        results = await asyncio.gather(first, *later, return_exceptions=True)
    assert results[:2] == [1, 2]
    assert str(results[2]) == (
        "bus 'main': frame 1 (ID 0x104) not sent: CanOperationError: bus-off (test)"
    )
    assert str(results[3]) == "bus 'main': not sent: the bus failed on an earlier frame"
    assert [(await recv(peer)).arbitration_id for _ in range(4)] == [0x100, 0x101, 0x102, 0x103]
    assert peer.recv(timeout=0.2) is None
    assert [f.arbitration_id for f in got.tx()] == [0x100, 0x101, 0x102, 0x103]
    stats = port.stats()
    assert (stats.tx, stats.tx_errors, stats.tx_dropped, stats.errors) == (4, 1, 1, 1)
    assert port.last_error == "transmit: CanOperationError: bus-off (test)"
    await port.aclose()


async def test_turning_transmit_off_keeps_the_report_of_the_frames_on_their_way(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    bus = SteppedBus(channel=channel)
    port, first = await first_in_flight(make_port, channel, bus)
    one = asyncio.create_task(port.send([frame(0x101), frame(0x102)]))
    two = asyncio.create_task(port.send([frame(0x103)]))
    await asyncio.sleep(0)  # one loop step: they queue their frames
    bus.allow(2)  # 0x100 and 0x101 go out; 0x101-0x103 were handed over together
    await bus.arrived()
    await bus.arrived()  # 0x102, the last frame of `one`, is inside bus.send
    assert port.disable_tx() == 1
    assert port.stats().tx_queued == 0
    bus.allow()
    async with asyncio.timeout(WAIT_S):
        results = await asyncio.gather(first, one, two, return_exceptions=True)
    assert results[:2] == [1, 2]  # all of `one` was on its way: it went out
    assert str(results[2]) == "bus 'main': transmit disabled"
    assert [(await recv(peer)).arbitration_id for _ in range(3)] == [0x100, 0x101, 0x102]
    assert peer.recv(timeout=0.2) is None
    stats = port.stats()
    assert (stats.tx, stats.tx_dropped) == (3, 1)
    await port.aclose()


async def test_the_transmitter_says_when_its_worker_is_out_of_bus_send_and_when_all_is_sent(
    channel: str,
) -> None:
    bus = GatedBus(channel=channel, gated=True)
    sent: list[CanFrame] = []
    tx = Transmitter(
        "main", queue_size=8, counters=PortCounters(), on_sent=sent.extend, on_error=print
    )
    tx.attach(bus)
    try:
        assert await tx.wait_worker(0.0)  # nothing sent yet: not inside bus.send
        frames = [frame(0x100)]
        future = tx.enqueue(frames, [f.to_can_message() for f in frames])
        await bus.arrived()
        assert not await tx.wait_worker(0.05)  # inside bus.send, held at the gate
        assert not await tx.wait_idle(0.05)
        worker_out = asyncio.create_task(tx.wait_worker(WAIT_S))
        idle = asyncio.create_task(tx.wait_idle(WAIT_S))
        await asyncio.sleep(0)  # one loop step: both are waiting
        bus.gate.set()
        assert await future == 1
        assert await worker_out
        assert await idle
        assert [f.arbitration_id for f in sent] == [0x100]
    finally:
        tx.detach()
        tx.close()
        bus.shutdown()


async def test_a_run_dropped_before_the_worker_begins_it_fails_whole_and_is_counted(
    channel: str, peer: can.BusABC
) -> None:
    bus = GatedBus(channel=channel)
    counters = PortCounters()
    sent: list[CanFrame] = []
    tx = Transmitter("main", queue_size=8, counters=counters, on_sent=sent.extend, on_error=print)
    # The worker thread is slow to begin a run handed to it (here: held busy), and transmit
    # goes off in between: none of the run's frames was claimed, so none may go out.
    busy = threading.Event()
    tx._executor = ThreadPoolExecutor(1)
    tx._executor.submit(busy.wait, WAIT_S)
    tx.attach(bus)
    try:
        frames = [frame(0x100), frame(0x101)]
        future = tx.enqueue(frames, [f.to_can_message() for f in frames])
        assert tx.queued == 2  # handed to the worker, not begun
        assert tx.drop_all(CanRefused, "transmit disabled") == 2
        assert tx.queued == 0
        busy.set()
        with pytest.raises(CanRefused, match=r"^bus 'main': transmit disabled$"):
            await future
        assert await tx.wait_idle(WAIT_S)
        assert (counters.tx, counters.tx_dropped) == (0, 2)
        assert sent == []
        assert peer.recv(timeout=0.2) is None
    finally:
        tx.detach()
        tx.close()
        bus.shutdown()
