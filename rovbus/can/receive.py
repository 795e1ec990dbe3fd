"""Receiving from a python-can bus into an asyncio loop, without blocking the loop.

Two paths, chosen by :func:`start_receiver`:

- :class:`ReaderReceiver`: the bus has a file descriptor (socketcan and friends). The loop
  watches it with ``loop.add_reader``; when it is readable, the callback drains up to
  ``burst`` frames with ``bus.recv(0)`` and delivers them as one list.
- :class:`ThreadReceiver`: the bus has none (``virtual``, ``pcan``, ``slcan``, ...). A
  daemon thread blocks in ``bus.recv`` and drains bursts the same way. Hand-over to the
  loop is coalesced: the thread appends to a pending list under a lock and schedules one
  ``loop.call_soon_threadsafe`` only if none is outstanding, so however fast frames come,
  the loop is woken at most once per iteration and takes everything that piled up.
  python-can's ``Notifier`` schedules one callback per frame instead.

Both put what they read into an :class:`RxSink`: they convert each ``can.Message`` into a
:class:`~rovbus.wire.canframe.CanFrame` (``rx``), then call ``deliver(frames, dropped)`` on
the loop thread, in arrival order. ``dropped``
counts frames lost since the last delivery: messages that are not valid frames, and (thread
path) frames beyond ``backlog`` waiting for a loop that has fallen behind; the newest are
dropped, so what is delivered stays in order with no holes before the gap.

Anything a receive raises (``can.CanError``, ``OSError``, a driver's odd exception) stops
the receiver and is handed to ``fail(exc)`` on the loop thread, after the frames read
before it were delivered.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import can

from rovbus.wire.canframe import CanFrame

__all__ = [
    "Deliver",
    "Fail",
    "ReaderReceiver",
    "Receiver",
    "RxConverter",
    "RxSink",
    "ThreadReceiver",
    "TimestampSource",
    "bus_fileno",
    "start_receiver",
]

#: ``deliver(frames, dropped)``: called on the loop thread with frames in arrival order.
Deliver = Callable[[list[CanFrame], int], None]
#: ``fail(exc)``: called on the loop thread once, when receiving raised.
Fail = Callable[[BaseException], None]

#: where a received frame's timestamp comes from: ``bus``: the interface's ``msg.timestamp``;
#: ``host``: ``time.time()`` when the frame was read; ``auto``: the interface's time if the
#: first frame's is within ``AUTO_TOLERANCE_S`` of the host clock (epoch time), else the host's.
TimestampSource = Literal["auto", "bus", "host"]
AUTO_TOLERANCE_S = 60.0


class RxConverter:
    """``can.Message`` -> ``CanFrame`` for one bus, with the timestamp policy applied."""

    __slots__ = ("_bus", "_use_bus_time")

    def __init__(self, bus: str, timestamps: TimestampSource = "auto") -> None:
        self._bus = bus
        self._use_bus_time: bool | None = {"auto": None, "bus": True, "host": False}[timestamps]

    def __call__(self, msg: can.Message) -> CanFrame:
        """Convert one received message; raises ``ValueError`` for an impossible frame."""
        use_bus_time = self._use_bus_time
        if use_bus_time is None:
            use_bus_time = abs(msg.timestamp - time.time()) < AUTO_TOLERANCE_S
            self._use_bus_time = use_bus_time
        if not use_bus_time:
            msg.timestamp = time.time()
        return CanFrame.from_can_message(msg, self._bus, "rx")


@dataclass(frozen=True, slots=True)
class RxSink:
    """Where a receive path puts what it reads: each message through ``convert``, then
    ``deliver`` (or ``fail``, once) called on ``loop``'s thread."""

    loop: asyncio.AbstractEventLoop
    convert: Callable[[can.Message], CanFrame]
    deliver: Deliver
    fail: Fail


class Receiver(Protocol):
    """What the port needs of either receive path."""

    def start(self) -> None: ...

    def stop(self) -> None:
        """Stop delivering; the thread path exits within its poll interval."""

    def join(self, timeout: float) -> bool:
        """Wait (blocking) for the receive thread to end; True when it has."""


def bus_fileno(bus: can.BusABC) -> int:
    """The bus's file descriptor, or -1 when it has none usable for ``add_reader``."""
    try:
        fd = bus.fileno()
    except (NotImplementedError, OSError, ValueError):
        return -1
    return fd if isinstance(fd, int) and fd >= 0 else -1


class ReaderReceiver:
    """Receive on the loop thread when the bus's descriptor is readable."""

    def __init__(
        self,
        bus: can.BusABC,
        fd: int,
        sink: RxSink,
        *,
        burst: int = 1024,
    ) -> None:
        self._bus = bus
        self._fd = fd
        self._sink = sink
        self._burst = burst
        self._active = False

    def start(self) -> None:
        self._sink.loop.add_reader(self._fd, self._on_readable)
        self._active = True

    def stop(self) -> None:
        if self._active:
            self._active = False
            with contextlib.suppress(Exception):  # the descriptor may already be gone
                self._sink.loop.remove_reader(self._fd)

    def join(self, timeout: float) -> bool:
        return True

    def _on_readable(self) -> None:
        frames: list[CanFrame] = []
        bad = 0
        recv = self._bus.recv
        sink = self._sink
        convert = sink.convert
        error: BaseException | None = None
        try:
            for _ in range(self._burst):
                msg = recv(0.0)
                if msg is None:
                    break
                try:
                    frames.append(convert(msg))
                except ValueError:
                    bad += 1
        except Exception as exc:
            error = exc
        if frames or bad:
            sink.deliver(frames, bad)
        if error is not None and self._active:
            self.stop()
            sink.fail(error)


class ThreadReceiver:
    """Receive in a daemon thread; hand bursts to the loop, coalesced."""

    def __init__(
        self,
        bus: can.BusABC,
        sink: RxSink,
        *,
        name: str,
        backlog: int = 100_000,
        burst: int = 1024,
        poll_s: float = 0.05,
    ) -> None:
        self._bus = bus
        self._sink = sink
        self._backlog = backlog
        self._burst = burst
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._pending: list[CanFrame] = []
        self._dropped = 0
        self._scheduled = False
        self._thread = threading.Thread(target=self._run, name=f"rovbus-can-rx-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float) -> bool:
        if self._thread.ident is not None:
            self._thread.join(timeout)
        return not self._thread.is_alive()

    # -- receive thread -----------------------------------------------------------------

    def _run(self) -> None:
        recv = self._bus.recv
        convert = self._sink.convert
        burst = self._burst
        poll_s = self._poll_s
        stop = self._stop
        while not stop.is_set():
            frames: list[CanFrame] = []
            bad = 0
            error: BaseException | None = None
            try:
                msg = recv(poll_s)
                while msg is not None:
                    try:
                        frames.append(convert(msg))
                    except ValueError:
                        bad += 1
                    if len(frames) >= burst:
                        break
                    msg = recv(0.0)
            except Exception as exc:
                error = exc
            if (frames or bad) and not self._post(frames, bad):
                return
            if error is not None:
                if not stop.is_set():
                    with contextlib.suppress(RuntimeError):  # the loop is closed
                        self._sink.loop.call_soon_threadsafe(self._sink.fail, error)
                return

    def _post(self, frames: list[CanFrame], bad: int) -> bool:
        """Add a burst to the pending list; wake the loop if needed. False: loop is gone."""
        with self._lock:
            room = self._backlog - len(self._pending)
            if room < len(frames):
                keep = max(room, 0)
                bad += len(frames) - keep
                del frames[keep:]
            self._pending.extend(frames)
            self._dropped += bad
            if self._scheduled:
                return True
            self._scheduled = True
        try:
            self._sink.loop.call_soon_threadsafe(self._hand_over)
        except RuntimeError:
            return False
        return True

    # -- loop thread --------------------------------------------------------------------

    def _hand_over(self) -> None:
        with self._lock:
            frames = self._pending
            dropped = self._dropped
            self._pending = []
            self._dropped = 0
            self._scheduled = False
        if frames or dropped:
            self._sink.deliver(frames, dropped)


def start_receiver(bus: can.BusABC, sink: RxSink, *, name: str, backlog: int) -> Receiver:
    """Start the receive path that fits the bus: ``add_reader`` on its descriptor, or a
    thread (``name``, at most ``backlog`` frames waiting for the loop) when it has none."""
    receiver: Receiver
    fd = bus_fileno(bus)
    if fd >= 0:
        receiver = ReaderReceiver(bus, fd, sink)
    else:
        receiver = ThreadReceiver(bus, sink, name=name, backlog=backlog)
    receiver.start()
    return receiver
