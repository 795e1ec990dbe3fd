"""A failing bus goes ``failed``, is counted, reopens by itself and works again."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import can
import pytest
from can_helpers import (
    WAIT_S,
    Collector,
    GatedBus,
    StateWatch,
    StuckBus,
    bus_config,
)

from rovbus.can import CanPort
from rovbus.errors import CanFailed, CanRefused
from rovbus.wire.canframe import CanFrame
from tests.helpers.waiting import eventually


class Factory:
    """Builds a GatedBus per (re)open; ``refuse`` makes the next opens fail."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.buses: list[GatedBus] = []
        self.refuse = 0

    def __call__(self) -> can.BusABC:
        if self.refuse:
            self.refuse -= 1
            raise can.CanInitializationError("adapter not present (test)")
        bus = GatedBus(channel=self.channel)
        self.buses.append(bus)
        return bus


def watched_port(
    make_port: Callable[..., CanPort],
    factory: Factory,
    got: Collector | None = None,
    **backoff: float,
) -> tuple[CanPort, StateWatch]:
    """A port on the buses ``factory`` builds, its states watched, retrying after 0.01 s."""
    states = StateWatch()
    port = make_port(
        bus_config(factory.channel),
        got if got is not None else Collector(),
        bus_factory=factory,
        on_state=states,
        backoff_initial_s=0.01,
        **backoff,
    )
    return port, states


def first_bus_then_good(
    make_port: Callable[..., CanPort], channel: str, first: type[GatedBus], **port_args: Any
) -> tuple[CanPort, StateWatch]:
    """A port whose first bus is a ``first``, every reopen a GatedBus, retrying after
    0.01 s; its states watched."""
    buses = iter([first])
    states = StateWatch()
    port = make_port(
        bus_config(channel),
        Collector(),
        bus_factory=lambda: next(buses, GatedBus)(channel=channel),
        on_state=states,
        backoff_initial_s=0.01,
        **port_args,
    )
    return port, states


async def test_receive_failure_reopens_and_receives_again(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    factory = Factory(channel)
    got = Collector()
    port, states = watched_port(make_port, factory, got, backoff_max_s=0.05)
    await port.open()
    peer.send(can.Message(arbitration_id=0x100, is_extended_id=False))
    await got.wait_for(lambda: len(got.frames) == 1)

    factory.refuse = 2  # the adapter stays away for two reopen attempts
    factory.buses[0].fail_recv.set()
    await states.wait_for("failed")
    assert port.last_error is not None
    assert "adapter unplugged" in port.last_error
    with pytest.raises(CanFailed, match="failed"):
        await port.send([CanFrame("main", 0x100)])

    await states.wait_for("ok", count=2)
    assert len(factory.buses) == 2
    assert factory.buses[0]._is_shutdown  # the failed bus was released
    peer.send(can.Message(arbitration_id=0x101, is_extended_id=False))
    await got.wait_for(lambda: len(got.frames) == 2)
    assert got.frames[-1].arbitration_id == 0x101
    stats = port.stats()
    assert (stats.errors, stats.reopen_count, stats.state) == (1, 1, "ok")
    assert states.states == ["opening", "ok", "failed", "ok"]
    await port.aclose()


async def test_send_failure_fails_the_call_drops_the_queue_and_reopens(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    factory = Factory(channel)
    port, states = watched_port(make_port, factory)
    await port.open()
    first = factory.buses[0]
    first.gate.clear()
    one = asyncio.create_task(port.send([CanFrame("main", 0x100), CanFrame("main", 0x101)]))
    assert await asyncio.to_thread(first.entered.wait, WAIT_S)
    two = asyncio.create_task(port.send([CanFrame("main", 0x102)]))
    await asyncio.sleep(0)  # one loop step: `two` queues its frame
    first.fail_send.set()
    first.gate.set()
    with pytest.raises(CanFailed, match=r"frame 0 \(ID 0x100\) not sent.*bus-off"):
        await one
    with pytest.raises(CanFailed, match="bus failed"):
        await two
    await states.wait_for("ok", count=2)
    assert await port.send([CanFrame("main", 0x103)]) == 1
    msg = await asyncio.to_thread(peer.recv, WAIT_S)
    assert msg is not None
    assert msg.arbitration_id == 0x103  # nothing from before the failure went out late
    stats = port.stats()
    assert (stats.errors, stats.tx_errors, stats.tx_dropped, stats.tx) == (1, 1, 2, 1)
    await port.aclose()


async def test_start_retries_a_bus_that_is_not_there_yet(
    channel: str, make_port: Callable[..., CanPort]
) -> None:
    factory = Factory(channel)
    factory.refuse = 1
    port, states = watched_port(make_port, factory)
    await port.start()
    assert port.state == "failed"
    await states.wait_for("ok")
    assert port.stats().reopen_count == 1
    await port.aclose()


async def test_aclose_while_failed_stops_the_retries(
    channel: str, make_port: Callable[..., CanPort]
) -> None:
    factory = Factory(channel)
    factory.refuse = 1_000_000
    port = make_port(bus_config(channel), Collector(), bus_factory=factory)
    await port.start()
    assert port.state == "failed"
    await port.aclose()
    assert port.state == "closed"


async def test_transmit_stays_off_across_a_reopen(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    factory = Factory(channel)
    port, states = watched_port(make_port, factory, backoff_max_s=0.05)
    await port.open()
    port.disable_tx()  # the operator's stop
    factory.refuse = 1
    factory.buses[0].fail_recv.set()
    await states.wait_for("ok", count=2)
    assert port.stats().reopen_count == 1
    assert not port.tx_enabled
    assert not port.stats().tx_enabled
    with pytest.raises(CanRefused, match="transmit disabled"):
        await port.send([CanFrame("main", 0x100)])
    port.enable_tx()  # only the operator turns it on again
    assert await port.send([CanFrame("main", 0x101)]) == 1
    msg = await asyncio.to_thread(peer.recv, WAIT_S)
    assert msg is not None
    assert msg.arbitration_id == 0x101  # the first frame on the wire since the stop
    assert port.stats().tx == 1
    await port.aclose()


async def test_every_failure_is_counted_named_and_logged_once_per_interval(
    channel: str, make_port: Callable[..., CanPort], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rovbus.can.port")
    factory = Factory(channel)
    port, states = watched_port(make_port, factory, backoff_max_s=0.05)
    await port.open()
    factory.buses[0].fail_recv.set()
    await states.wait_for("ok", count=2)
    assert port.last_error == "receive: CanOperationError: adapter unplugged (test)"
    for reopened in (3, 4):  # twice: a send fails; its second frame is dropped
        factory.buses[-1].fail_send.set()
        with pytest.raises(CanFailed, match=r"frame 0 \(ID 0x100\) not sent"):
            await port.send([CanFrame("main", 0x100), CanFrame("main", 0x101)])
        await states.wait_for("ok", count=reopened)
    assert port.last_error == "transmit: CanOperationError: bus-off (test)"
    stats = port.stats()
    assert (stats.errors, stats.reopen_count, stats.tx_errors, stats.tx_dropped) == (3, 3, 2, 2)
    warnings = [r.getMessage() for r in caplog.records if r.name == "rovbus.can.port"]
    assert warnings == [  # the next two within 30 s are counted, not logged
        "CAN bus main failed (receive: CanOperationError: adapter unplugged (test)); "
        "reopening (0 more failures not logged)"
    ]
    await port.aclose()


@pytest.mark.parametrize("send", ["goes out", "fails too"])
async def test_a_frame_inside_bus_send_when_receiving_fails_ends_before_the_bus_closes(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort], send: str
) -> None:
    factory = Factory(channel)
    got = Collector()
    port, states = watched_port(make_port, factory, got)
    await port.open()
    first = factory.buses[0]
    first.gate.clear()
    sending = asyncio.create_task(port.send([CanFrame("main", 0x100)]))
    await first.arrived()
    first.fail_recv.set()
    await states.wait_for("failed")
    if send == "fails too":  # after the bus was given up: still one failure, one reopen
        first.fail_send.set()
    first.gate.set()  # the bus is shut down only once the worker has left bus.send
    if send == "goes out":
        assert await sending == 1  # it cannot be recalled: it went out, and is reported so
        msg = await asyncio.to_thread(peer.recv, WAIT_S)
        assert msg is not None
        assert msg.arbitration_id == 0x100
        await got.wait_for(lambda: len(got.tx()) == 1)
    else:
        with pytest.raises(CanFailed, match=r"frame 0 \(ID 0x100\) not sent.*bus-off"):
            await sending
    await states.wait_for("ok", count=2)
    stats = port.stats()
    sent = send == "goes out"
    assert (stats.tx, stats.tx_errors, stats.errors, stats.reopen_count) == (sent, not sent, 1, 1)
    assert port.last_error == "receive: CanOperationError: adapter unplugged (test)"
    assert len(factory.buses) == 2
    assert states.states == ["opening", "ok", "failed", "ok"]
    await port.aclose()


async def test_aclose_after_a_failure_that_cannot_be_repaired_releases_the_bus(
    channel: str, make_port: Callable[..., CanPort]
) -> None:
    factory = Factory(channel)
    port, states = watched_port(make_port, factory)
    await port.open()
    factory.refuse = 1_000_000  # the adapter never comes back
    factory.buses[0].fail_recv.set()
    await states.wait_for("failed")
    await port.aclose()
    assert port.state == "closed"
    assert factory.buses[0]._is_shutdown


@pytest.mark.parametrize(
    "released",
    ["while failed", "after the reopen", "after the close", "after a close while failed"],
)
async def test_a_frame_a_released_bus_reads_late_is_dropped_not_published(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort], released: str
) -> None:
    stuck = StuckBus(channel=channel)
    buses = iter([lambda: stuck, lambda: GatedBus(channel=channel)])
    got = Collector()
    states = StateWatch()
    port = make_port(
        bus_config(channel),
        got,
        bus_factory=lambda: next(buses)(),
        on_state=states,
        backoff_initial_s=0.01,
    )
    await port.open()
    stuck.stick.set()  # its receive blocks and ignores the stop: a thread that outlives it
    assert await asyncio.to_thread(stuck.stuck.wait, WAIT_S)
    if released == "after the close":
        await port.aclose()  # gives up on the thread after 1 s
    else:
        stuck.fail_send.set()
        with pytest.raises(CanFailed, match="bus-off"):
            await port.send([CanFrame("main", 0x100)])
        if released == "after the reopen":
            await states.wait_for("ok", count=2)
        elif released == "after a close while failed":  # before the reopen: it waits 1 s
            await port.aclose()  # for the stuck thread first
    stuck.unstick.set()  # it reads one more frame and hands it over
    await eventually(
        lambda: port.stats().rx_dropped == 1, WAIT_S, "the late frame counted as dropped"
    )
    closed = released in ("after the close", "after a close while failed")
    if not closed:
        await states.wait_for("ok", count=2)
        peer.send(can.Message(arbitration_id=0x101, is_extended_id=False))
        await got.wait_for(lambda: len(got.rx()) == 1)
    published = [] if closed else [0x101]
    assert [f.arbitration_id for f in got.rx()] == published  # not the late one
    await port.aclose()


@pytest.mark.parametrize("given_up", ["it fails to send", "the port closes"])
async def test_a_bus_given_up_is_shut_down_only_after_its_reads_end(
    channel: str, make_port: Callable[..., CanPort], given_up: str
) -> None:
    class SlowReadBus(GatedBus):
        """A driver whose every read takes 0.2 s whatever its timeout; whether it was shut
        down in the middle of one (a driver freed under a reading thread may crash)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.reading = threading.Event()
            self.shut_while_reading: bool | None = None

        def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
            self.reading.set()
            try:
                threading.Event().wait(0.2)
                return super()._recv_internal(0)
            finally:
                self.reading.clear()

        def shutdown(self) -> None:
            if self.shut_while_reading is None:
                self.shut_while_reading = self.reading.is_set()
            super().shutdown()

    slow = SlowReadBus(channel=channel)
    buses = iter([lambda: slow, lambda: GatedBus(channel=channel)])
    states = StateWatch()
    port = make_port(
        bus_config(channel),
        Collector(),
        bus_factory=lambda: next(buses)(),
        on_state=states,
        backoff_initial_s=0.01,
    )
    await port.open()
    assert await asyncio.to_thread(slow.reading.wait, WAIT_S)
    if given_up == "it fails to send":
        slow.fail_send.set()
        with pytest.raises(CanFailed, match="bus-off"):
            await port.send([CanFrame("main", 0x100)])
        await states.wait_for("ok", count=2)
    await port.aclose()
    assert slow.shut_while_reading is False


async def test_a_bus_failing_while_the_port_closes_is_released(
    channel: str, make_port: Callable[..., CanPort]
) -> None:
    factory = Factory(channel)
    port, _ = watched_port(make_port, factory)
    await port.open()
    first = factory.buses[0]
    first.gate.clear()
    sending = asyncio.create_task(port.send([CanFrame("main", 0x100)]))
    await first.arrived()
    closing = asyncio.create_task(port.aclose(deadline=WAIT_S))
    await asyncio.sleep(0)  # one loop step: the close has begun, draining what is queued
    first.fail_send.set()
    first.gate.set()
    with pytest.raises(CanFailed, match="bus-off"):
        await sending
    await closing
    assert port.state == "closed"
    assert first._is_shutdown  # released, not reopened
    assert len(factory.buses) == 1
    assert port.stats().errors == 1


async def test_a_bus_that_held_longer_than_the_longest_backoff_is_retried_at_the_shortest(
    channel: str, make_port: Callable[..., CanPort]
) -> None:
    factory = Factory(channel)
    states = StateWatch()
    port = make_port(  # every bus has held for 1 µs when it fails
        bus_config(channel),
        Collector(),
        bus_factory=factory,
        on_state=states,
        backoff_initial_s=1e-6,
        backoff_max_s=1e-6,
    )
    await port.open()
    for reopened in (2, 3):
        factory.buses[-1].fail_recv.set()
        await states.wait_for("ok", count=reopened)
    assert port.stats().reopen_count == 2
    await port.aclose()


async def test_a_bus_that_fails_again_right_after_each_reopen_is_retried_ever_later(
    channel: str, make_port: Callable[..., CanPort]
) -> None:
    class DownFactory(Factory):
        """Buses that open, then fail at their first read (socketcan on an interface that
        is down); when each was opened."""

        def __init__(self, channel: str) -> None:
            super().__init__(channel)
            self.opened: list[float] = []

        def __call__(self) -> can.BusABC:
            bus = super().__call__()
            assert isinstance(bus, GatedBus)
            bus.fail_recv.set()
            self.opened.append(time.monotonic())
            return bus

    factory = DownFactory(channel)
    states = StateWatch()
    port = make_port(  # no bus holds for backoff_max_s: the backoff never starts afresh
        bus_config(channel),
        Collector(),
        bus_factory=factory,
        on_state=states,
        backoff_initial_s=0.01,
        backoff_max_s=5.0,
    )
    await port.open()
    await states.wait_for("ok", count=8)
    await port.aclose()
    gaps = [b - a for a, b in itertools.pairwise(factory.opened)]
    # each reopen waits at least twice as long as the one before (the loop may wake up
    # a clock tick early: 1 % spare)
    for n, gap in enumerate(gaps[:7]):
        assert gap >= 0.99 * 0.01 * 2**n, (n, gaps)


class Panic(BaseException):
    """What a driver might raise that is not an Exception."""


async def test_a_driver_raising_a_base_exception_fails_the_call_and_the_bus(
    channel: str, make_port: Callable[..., CanPort]
) -> None:
    class PanickingBus(GatedBus):
        def send(self, msg: can.Message, timeout: float | None = None) -> None:
            raise Panic("driver gave up (test)")

    port, states = first_bus_then_good(make_port, channel, PanickingBus)
    await port.open()
    with pytest.raises(CanFailed, match=r"frame 0 \(ID 0x100\) not sent: Panic: driver gave up"):
        await port.send([CanFrame("main", 0x100)])
    await states.wait_for("ok", count=2)
    assert port.last_error == "transmit: Panic: driver gave up (test)"
    assert await port.send([CanFrame("main", 0x101)]) == 1
    await port.aclose()


async def test_a_send_the_bus_cannot_take_fails_after_send_timeout_and_the_bus_reopens(
    channel: str, peer: can.BusABC, make_port: Callable[..., CanPort]
) -> None:
    class FullBus(GatedBus):
        """A bus whose transmit buffer stays full: ``send`` waits for room as long as it is
        told to, then raises as socketcan does (told nothing, it would wait for ever;
        here WAIT_S)."""

        def send(self, msg: can.Message, timeout: float | None = None) -> None:
            threading.Event().wait(WAIT_S if timeout is None else timeout)
            raise can.CanOperationError(f"Transmit buffer full (waited {timeout} s)")

    port, states = first_bus_then_good(make_port, channel, FullBus, send_timeout_s=0.05)
    await port.open()
    with pytest.raises(CanFailed, match=r"frame 0 \(ID 0x100\) not sent: .* \(waited 0.05 s\)$"):
        await port.send([CanFrame("main", 0x100)])
    await states.wait_for("ok", count=2)
    assert port.last_error == "transmit: CanOperationError: Transmit buffer full (waited 0.05 s)"
    assert await port.send([CanFrame("main", 0x101)]) == 1
    msg = await asyncio.to_thread(peer.recv, WAIT_S)
    assert msg is not None
    assert msg.arbitration_id == 0x101
    await port.aclose()
