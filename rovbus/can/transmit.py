"""The transmit side of a CAN port: checks, a bounded queue, sending off the event loop.

:func:`tx_refusal` says why a frame may not go onto a bus (or None). :class:`Transmitter`
holds the queue of accepted requests (one request = the frames of one ``send`` call) and
feeds them, in order, to a single worker thread that calls ``bus.send`` frame by frame. The
worker takes up to ``max_run`` frames of whole requests per hand-over, so a stream of small
requests costs one executor round trip per run, not per frame.

Each request may carry an :class:`~rovbus.wire.origin.Origin` (who asked, by which
request, when, why); the frames it puts on the wire are reported with it.

Dropping is exact: the worker claims each frame under a small lock before sending it, so
:meth:`Transmitter.drop_all` knows which frames will never reach the wire, fails the
requests they belong to and counts them in ``tx_dropped``. A frame already in
``bus.send`` cannot be recalled; it is reported like any other sent frame.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import can

from rovbus.config.txallow import TxAllowList, format_id
from rovbus.errors import CanError, CanFailed, CanRefused
from rovbus.wire.canframe import CanFrame
from rovbus.wire.origin import Origin

from .stats import PortCounters

__all__ = ["Transmitter", "tx_refusal"]


def tx_refusal(frame: object, bus: str, *, fd: bool, allow: TxAllowList) -> str | None:
    """Why ``frame`` may not be transmitted on ``bus`` (None: it may).

    ``allow`` is the bus's ``tx_allow``; an empty list allows nothing. The ID is checked in
    the frame's format: an 11-bit ID and the 29-bit ID of the same number are different
    identifiers. The frame's ``direction`` does not matter.
    """
    if not isinstance(frame, CanFrame):
        return f"expected a CanFrame, got {type(frame).__name__}"
    if frame.bus != bus:
        return f"it is for bus {frame.bus!r}, not {bus!r}"
    if frame.is_error_frame:
        return "error frames cannot be transmitted"
    if frame.is_fd and not fd:
        return f"it is a CAN FD frame and bus {bus!r} is classic CAN (fd = false)"
    arbitration_id, extended = frame.arbitration_id, frame.is_extended_id
    if not allow.allows(arbitration_id, extended=extended):
        allowed = str(allow)
        if len(allowed) > 80:
            allowed = allowed[:77] + "..."
        kind = "29-bit (extended)" if extended else "11-bit (standard)"
        why = (
            f"{kind} ID {format_id(arbitration_id, extended)} is not in the tx_allow list of "
            f"{bus!r} ({allowed})"
        )
        if allow.allows(arbitration_id, extended=not extended):
            other = "11-bit" if extended else "29-bit"
            why += (
                f"; the {other} ID {format_id(arbitration_id, not extended)} is allowed, "
                "a different identifier on the wire"
            )
        return why
    return None


class _Request:
    __slots__ = ("frames", "future", "msgs", "origin")

    def __init__(
        self,
        frames: Sequence[CanFrame],
        msgs: list[can.Message],
        future: asyncio.Future[int],
        origin: Origin | None,
    ) -> None:
        self.frames = frames
        self.msgs = msgs
        self.future = future
        self.origin = origin


class _Run:
    """What one worker hand-over sends; ``claimed`` and ``cancelled`` under ``lock``."""

    __slots__ = ("cancelled", "claimed", "error", "lock", "msgs", "requests", "timestamps")

    def __init__(self, requests: list[_Request]) -> None:
        self.requests = requests
        self.msgs = [m for r in requests for m in r.msgs]
        self.lock = threading.Lock()
        self.cancelled = False
        self.claimed = 0
        self.timestamps: list[float] = []
        self.error: BaseException | None = None


class Transmitter:
    """Bounded, ordered transmit queue of one bus; everything but the worker runs on the loop.

    ``on_sent(frames)`` gets the frames that reached the wire, marked ``direction="tx"``
    with their send time and their request's origin. ``on_error(exc)`` is called once per
    failing ``bus.send``; the owner then detaches the bus and drops the queue.
    """

    def __init__(
        self,
        name: str,
        *,
        queue_size: int,
        counters: PortCounters,
        on_sent: Callable[[list[CanFrame]], None],
        on_error: Callable[[BaseException], None],
        send_timeout_s: float = 1.0,
        max_run: int = 256,
    ) -> None:
        self._name = name
        self._queue_size = queue_size
        self._counters = counters
        self._on_sent = on_sent
        self._on_error = on_error
        self._send_timeout_s = send_timeout_s
        self._max_run = max_run
        self._queue: deque[_Request] = deque()
        self._queue_frames = 0
        self._bus: can.BusABC | None = None
        self._run: _Run | None = None
        self._run_future: asyncio.Future[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def queued(self) -> int:
        """Frames waiting or being sent (not those dropped from the run in hand)."""
        run = self._run
        in_hand = 0 if run is None or run.cancelled else len(run.msgs) - run.claimed
        return self._queue_frames + in_hand

    def attach(self, bus: can.BusABC) -> None:
        """Start sending on ``bus``."""
        self._bus = bus
        self._pump()

    def detach(self) -> None:
        """Stop handing frames to the worker (the one in flight finishes)."""
        self._bus = None

    def enqueue(
        self, frames: Sequence[CanFrame], msgs: list[can.Message], origin: Origin | None = None
    ) -> asyncio.Future[int]:
        """Queue checked frames of one request (``origin``: who caused them); the future
        resolves with their count once all are sent.

        Raises CanRefused "transmit queue full" when they do not all fit (none is queued).
        """
        n = len(msgs)
        if self.queued + n > self._queue_size:
            raise CanRefused(
                f"bus {self._name!r}: transmit queue full ({self.queued} of "
                f"{self._queue_size} frames queued, {n} more refused)"
            )
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(frames, msgs, future, origin))
        self._queue_frames += n
        self._idle.clear()
        self._pump()
        return future

    def withdraw(self, future: asyncio.Future[int]) -> None:
        """The awaiter of ``future`` was cancelled: take its frames off the queue if unsent."""
        for request in self._queue:
            if request.future is future:
                self._queue.remove(request)
                self._queue_frames -= len(request.msgs)
                self._counters.tx_dropped += len(request.msgs)
                self._check_idle()
                return

    def drop_all(self, error: type[CanError], reason: str) -> int:
        """Drop every frame not on the wire yet; their requests fail with ``error(reason)``:
        :class:`CanRefused` when the port's user dropped them, :class:`CanFailed` the bus."""
        dropped = 0
        run = self._run
        if run is not None:
            with run.lock:
                run.cancelled = True
                claimed = run.claimed
            dropped += len(run.msgs) - claimed
            end = 0
            for request in run.requests:
                end += len(request.msgs)
                if end > claimed and not request.future.done():
                    request.future.set_exception(error(f"bus {self._name!r}: {reason}"))
        while self._queue:
            request = self._queue.popleft()
            dropped += len(request.msgs)
            if not request.future.done():
                request.future.set_exception(error(f"bus {self._name!r}: {reason}"))
        self._queue_frames = 0
        self._counters.tx_dropped += dropped
        self._check_idle()
        return dropped

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or in flight; False on timeout."""
        try:
            async with asyncio.timeout(max(timeout, 0.0)):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def wait_worker(self, timeout: float) -> bool:
        """Wait until the worker is not inside ``bus.send``; False on timeout."""
        future = self._run_future
        if future is None or future.done():
            return True
        done, _ = await asyncio.wait({future}, timeout=max(timeout, 0.0))
        return bool(done)

    def close(self) -> None:
        """Release the worker thread (it ends after the frame it may be sending)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    # -- internals ----------------------------------------------------------------------

    def _check_idle(self) -> None:
        if not self._queue and self._run is None:
            self._idle.set()

    def _pump(self) -> None:
        bus = self._bus
        if self._run is not None or bus is None or not self._queue:
            return
        requests: list[_Request] = []
        count = 0
        queue = self._queue
        while queue and (not requests or count + len(queue[0].msgs) <= self._max_run):
            request = queue.popleft()
            requests.append(request)
            count += len(request.msgs)
        self._queue_frames -= count
        run = _Run(requests)
        self._run = run
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"rovbus-can-tx-{self._name}")
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, self._send_run, bus, run)
        self._run_future = future
        future.add_done_callback(lambda f: self._run_done(run, f))

    def _send_run(self, bus: can.BusABC, run: _Run) -> None:
        """Worker thread: send the run's frames in order, stop at cancel or the first error."""
        send = bus.send
        timeout = self._send_timeout_s
        lock = run.lock
        stamps = run.timestamps
        for i, msg in enumerate(run.msgs):
            with lock:
                if run.cancelled:
                    return
                run.claimed = i + 1
            try:
                send(msg, timeout)
            except Exception as exc:
                run.error = exc
                return
            stamps.append(time.time())

    def _run_done(self, run: _Run, future: asyncio.Future[None]) -> None:
        self._run = None
        if not future.cancelled() and future.exception() is not None and run.error is None:
            run.error = future.exception()  # the executor refused the job
        stamps = run.timestamps
        sent = len(stamps)
        error = run.error
        counters = self._counters
        echo: list[CanFrame] = []
        start = 0
        for request in run.requests:
            frames = request.frames
            origin = request.origin
            n = len(frames)
            for j in range(min(max(sent - start, 0), n)):
                echo.append(
                    replace(frames[j], direction="tx", timestamp=stamps[start + j], origin=origin)
                )
            if not request.future.done():
                if sent >= start + n:
                    request.future.set_result(n)
                elif error is not None and sent < start + n:
                    index = sent - start
                    if index >= 0:
                        why = f"frame {index} (ID 0x{frames[index].arbitration_id:X}) not sent: "
                        why += f"{type(error).__name__}: {error}"
                    else:
                        why = "not sent: the bus failed on an earlier frame"
                    request.future.set_exception(CanFailed(f"bus {self._name!r}: {why}"))
            start += n
        counters.tx += sent
        counters.tx_bytes += sum(len(f.data) for f in echo)
        if error is not None:
            counters.tx_errors += 1
            if not run.cancelled:
                counters.tx_dropped += len(run.msgs) - sent - 1
        if echo:
            self._on_sent(echo)
        if error is not None:
            self._on_error(error)
        self._pump()
        self._check_idle()
