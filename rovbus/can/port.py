"""One configured CAN bus inside an asyncio loop: :class:`CanPort`.

A port owns its python-can bus from :meth:`CanPort.open` to :meth:`CanPort.aclose`:
it receives without blocking the loop (see :mod:`rovbus.can.receive`), transmits off
the loop through a bounded queue (see :mod:`rovbus.can.transmit`), and when the bus
raises (adapter unplugged, bus-off, interface gone) it shuts the bus down and reopens it
with exponential backoff while the rest of the node goes on.

Every frame received, and every frame this port put on the wire (``direction="tx"``),
goes to the ``on_frames`` callback on the loop thread, in order, as lists.

Transmit drop policy: :meth:`CanPort.send` refuses a whole call (nothing queued) when a
frame is invalid for the bus, when its frames do not fit in the queue (``queue_size``
frames), or when the port is not ``ok`` or transmit is disabled. Frames already queued
are dropped, their ``send`` raising a CanError and ``tx_dropped`` counting them, on
:meth:`CanPort.disable_tx`, :meth:`CanPort.drop_queued`, a bus failure (stale commands are
never sent after a reopen) and at the end of :meth:`CanPort.aclose`'s drain deadline.

What the caller could have avoided raises :class:`~rovbus.errors.CanRefused` (a bad
frame, a full queue, transmit off, a closed port, frames dropped by ``disable_tx`` or
``drop_queued``); what the bus did raises :class:`~rovbus.errors.CanFailed` (it cannot be
opened, is ``failed`` or ``opening``, a write failed, frames dropped when it failed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import can
import can.typechecking

from rovbus.config.models import BusConfig, CanFilter
from rovbus.errors import CanError, CanFailed, CanRefused
from rovbus.ratelimit import RateLimiter
from rovbus.wire.canframe import CanFrame
from rovbus.wire.origin import Origin

from .receive import Receiver, RxConverter, RxSink, TimestampSource, start_receiver
from .stats import PortCounters, PortState, PortStats
from .transmit import Transmitter, tx_refusal

__all__ = ["CanPort"]

log = logging.getLogger(__name__)

#: seconds between two log lines of the same kind for one port
LOG_INTERVAL_S = 30.0


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class CanPort:
    """One CAN bus of a node: receive, transmit, failure recovery, counters.

    ``on_frames(frames)`` is called on the loop thread with received frames and with the
    frames this port sent (``direction="tx"``, timestamp = send time). ``on_state(port)``
    is called on every change of :attr:`state`. ``bus_factory`` builds the python-can bus
    (default: ``can.Bus(**config.bus_kwargs())``); it runs in a worker thread and is called
    again for every reopen. Receive filters from the config are applied to each new bus.

    ``timestamps`` picks the receive time source, see
    :data:`rovbus.can.receive.TimestampSource`.
    """

    def __init__(
        self,
        config: BusConfig,
        on_frames: Callable[[list[CanFrame]], None],
        *,
        bus_factory: Callable[[], can.BusABC] | None = None,
        on_state: Callable[[CanPort], None] | None = None,
        timestamps: TimestampSource = "auto",
        backoff_initial_s: float = 0.1,
        backoff_max_s: float = 5.0,
        send_timeout_s: float = 1.0,
        rx_backlog: int = 100_000,
    ) -> None:
        if backoff_initial_s <= 0 or backoff_max_s < backoff_initial_s:
            raise ValueError("need 0 < backoff_initial_s <= backoff_max_s")
        self._config = config
        self._name = config.name
        self._on_frames = on_frames
        self._on_state = on_state
        self._factory = bus_factory or self._default_factory
        self._timestamps: TimestampSource = timestamps
        self._backoff_initial_s = backoff_initial_s
        self._backoff_max_s = backoff_max_s
        self._retry_delay = backoff_initial_s  # the next reopen's delay
        self._live_since = 0.0  # loop time the bus last went live
        self._send_timeout_s = send_timeout_s
        self._rx_backlog = rx_backlog
        self._filters = _python_can_filters(config.filters)
        self._state: PortState = "closed"
        self._last_error: str | None = None
        self._tx_enabled = True
        self._counters = PortCounters()
        self._log = RateLimiter(LOG_INTERVAL_S)
        self._bus: can.BusABC | None = None
        self._receiver: Receiver | None = None
        self._session = 0  # bumped whenever the live bus goes away; stale callbacks check it
        self._recovery: asyncio.Task[None] | None = None
        self._closing = False
        self._close_task: asyncio.Task[None] | None = None
        self._tx = Transmitter(
            self._name,
            queue_size=config.queue_size,
            counters=self._counters,
            on_sent=self._emit,
            on_error=self._on_tx_error,
            send_timeout_s=send_timeout_s,
        )

    # -- properties ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The bus name from the system file."""
        return self._name

    @property
    def config(self) -> BusConfig:
        return self._config

    @property
    def state(self) -> PortState:
        """``closed``, ``opening``, ``ok`` or ``failed``."""
        return self._state

    @property
    def last_error(self) -> str | None:
        """Why the bus last failed or could not be reopened (None: never)."""
        return self._last_error

    @property
    def tx_enabled(self) -> bool:
        return self._tx_enabled

    def stats(self) -> PortStats:
        """A snapshot of the counters and state."""
        return self._counters.snapshot(
            bus=self._name,
            state=self._state,
            last_error=self._last_error,
            tx_enabled=self._tx_enabled,
            tx_queued=self._tx.queued,
        )

    # -- opening ------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the bus and start receiving; raise CanFailed if it cannot be opened."""
        self._check_openable()
        self._set_state("opening")
        try:
            bus = await self._create_bus()
        except BaseException:
            if not self._closing:
                self._set_state("closed")
            raise
        self._go_live(bus)

    async def start(self) -> None:
        """Like :meth:`open`, but a bus that cannot be opened goes ``failed`` and is retried
        with backoff in the background instead of raising."""
        self._check_openable()
        self._set_state("opening")
        try:
            bus = await self._create_bus()
        except CanError as exc:
            self._last_error = str(exc)
            self._counters.errors += 1
            self._set_state("failed")
            self._recovery = asyncio.create_task(self._reopen(), name=f"rovbus-can-{self._name}")
            return
        except BaseException:
            if not self._closing:
                self._set_state("closed")
            raise
        self._go_live(bus)

    def _check_openable(self) -> None:
        if self._closing:
            raise CanRefused(f"bus {self._name!r}: port is closed")
        if self._state != "closed":
            raise CanRefused(f"bus {self._name!r}: already {self._state}")

    def _default_factory(self) -> can.BusABC:
        return can.Bus(**self._config.bus_kwargs())

    def _make_bus(self) -> can.BusABC:
        """Worker thread: build the bus and apply the receive filters."""
        config = self._config
        try:
            bus = self._factory()
        except Exception as exc:
            raise CanFailed(
                f"bus {self._name!r}: cannot open {config.interface} channel "
                f"{config.channel!r}: {_describe(exc)}"
            ) from exc
        try:
            bus.set_filters(self._filters)
        except Exception as exc:
            bus.shutdown()
            raise CanFailed(f"bus {self._name!r}: cannot set filters: {_describe(exc)}") from exc
        return bus

    async def _create_bus(self) -> can.BusABC:
        task = asyncio.ensure_future(asyncio.to_thread(self._make_bus))
        try:
            bus = await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(_shutdown_created)  # a bus that opens after all is closed
            raise
        if self._closing:
            bus.shutdown()
            raise CanRefused(f"bus {self._name!r}: port closed while opening")
        return bus

    def _go_live(self, bus: can.BusABC) -> None:
        self._session += 1
        session = self._session
        self._bus = bus
        self._live_since = asyncio.get_running_loop().time()
        sink = RxSink(
            asyncio.get_running_loop(),
            RxConverter(self._name, self._timestamps),
            lambda frames, dropped: self._on_rx(session, frames, dropped),
            lambda exc: self._on_fail(session, "receive", exc),
        )
        self._receiver = start_receiver(bus, sink, name=self._name, backlog=self._rx_backlog)
        if self._tx_enabled:
            self._tx.attach(bus)
        self._set_state("ok")

    # -- receiving ----------------------------------------------------------------------

    def _on_rx(self, session: int, frames: list[CanFrame], dropped: int) -> None:
        counters = self._counters
        if session != self._session:
            counters.rx_dropped += len(frames) + dropped
            return
        counters.rx_dropped += dropped
        if not frames:
            return
        counters.rx += len(frames)
        counters.rx_bytes += sum([len(f.data) for f in frames])
        counters.error_frames += sum([f.is_error_frame for f in frames])
        self._emit(frames)

    def _emit(self, frames: list[CanFrame]) -> None:
        try:
            self._on_frames(frames)
        except Exception:
            self._counters.callback_errors += 1
            held = self._log.allow("callback")
            if held is not None:
                log.exception(
                    "CAN bus %s: on_frames consumer raised (%d more not logged)", self._name, held
                )

    def set_filters(self, filters: Sequence[CanFilter] | None) -> None:
        """Replace the receive filters (None or empty: receive everything), now and on
        every reopen. Raises CanFailed if the live bus refuses them."""
        self._filters = _python_can_filters(filters)
        bus = self._bus
        if bus is not None:
            try:
                bus.set_filters(self._filters)
            except Exception as exc:
                raise CanFailed(
                    f"bus {self._name!r}: cannot set filters: {_describe(exc)}"
                ) from exc

    # -- transmitting -------------------------------------------------------------------

    async def send(self, frames: Sequence[CanFrame], origin: Origin | None = None) -> int:
        """Transmit ``frames`` in order; return their count once all are on the wire.
        ``origin`` (who asked, by which request, or the node itself and why) goes with
        each frame reported as sent.

        Every frame is checked first (bus name, not an error frame, FD only on an FD bus,
        ID in ``tx_allow`` in the frame's format, 11- or 29-bit); the first bad one raises
        CanRefused naming its index and why, and nothing is sent. Raises CanRefused
        "transmit queue full" when they do not fit in the queue (nothing is queued), when
        the port is closed or transmit is disabled, or when the frames are dropped by
        :meth:`disable_tx` or :meth:`drop_queued`; CanFailed when the bus is not ``ok`` or
        fails before the frames reach the wire.
        """
        future = self.submit(frames, origin)
        try:
            return await future
        except asyncio.CancelledError:
            self._tx.withdraw(future)
            raise

    def submit(
        self, frames: Sequence[CanFrame], origin: Origin | None = None
    ) -> asyncio.Future[int]:
        """Queue ``frames`` now, after the checks :meth:`send` makes (CanError as there);
        the future resolves as :meth:`send` returns. For a caller that must know the
        frames are queued before anything else runs on the loop (the helm's failsafe)."""
        frames = tuple(frames)
        fd = self._config.fd
        allow = self._config.tx_allow
        name = self._name
        for index, frame in enumerate(frames):
            why = tx_refusal(frame, name, fd=fd, allow=allow)
            if why is not None:
                raise CanRefused(f"bus {name!r}: frame {index} refused, nothing sent: {why}")
        if not frames:
            future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            future.set_result(0)
            return future
        if self._closing or self._state == "closed":
            raise CanRefused(f"bus {name!r}: port is closed")
        if self._state != "ok":
            raise CanFailed(f"bus {name!r}: bus is {self._state} ({self._last_error})")
        if not self._tx_enabled:
            raise CanRefused(f"bus {name!r}: transmit disabled")
        msgs = []
        for frame in frames:
            msg = frame.to_can_message()
            msg.channel = None  # the bus's own channel; socketcan would route by this name
            msgs.append(msg)
        return self._tx.enqueue(frames, msgs, origin)

    def disable_tx(self) -> int:
        """Stop transmitting now and drop what is queued (their ``send`` raise CanRefused
        "transmit disabled"); new sends are refused until :meth:`enable_tx`. Returns the
        number of frames dropped."""
        self._tx_enabled = False
        self._tx.detach()
        return self._tx.drop_all(CanRefused, "transmit disabled")

    def enable_tx(self) -> None:
        """Allow transmitting again."""
        self._tx_enabled = True
        if self._bus is not None and self._state == "ok":
            self._tx.attach(self._bus)

    def drop_queued(self, reason: str = "transmit queue dropped (interrupt)") -> int:
        """Drop every queued frame not yet on the wire (their ``send`` raise CanRefused
        ``reason``); return how many."""
        return self._tx.drop_all(CanRefused, reason)

    def flush_device_queue(self) -> bool:
        """Ask the interface to discard what its driver or device holds for transmission
        (python-can's ``flush_tx_buffer``); False where it cannot (socketcan, virtual)."""
        bus = self._bus
        if bus is None:
            return False
        try:
            bus.flush_tx_buffer()
        except NotImplementedError:
            return False
        except Exception:
            self._counters.tx_errors += 1
            return False
        return True

    # -- failure and recovery -----------------------------------------------------------

    def _on_tx_error(self, exc: BaseException) -> None:
        self._on_fail(self._session, "transmit", exc)

    def _on_fail(self, session: int, where: str, exc: BaseException) -> None:
        if session != self._session or self._state != "ok":
            return
        self._session += 1
        self._last_error = f"{where}: {_describe(exc)}"
        self._counters.errors += 1
        held = self._log.allow("failed")
        if held is not None:
            log.warning(
                "CAN bus %s failed (%s); reopening (%d more failures not logged)",
                self._name,
                self._last_error,
                held,
            )
        bus, receiver = self._bus, self._receiver
        if receiver is not None:
            receiver.stop()
        self._tx.detach()
        self._tx.drop_all(CanFailed, f"bus failed ({self._last_error})")
        self._set_state("failed")
        if self._closing:
            # aclose releases them (it would cancel a task of ours, maybe before it ran)
            return
        self._bus = self._receiver = None
        # Back off afresh only after a bus that held for backoff_max_s. One that fails again
        # soon after a reopen (socketcan opens fine on an interface that is down, then the
        # first read raises ENETDOWN) keeps backing off instead of flapping every
        # backoff_initial_s.
        if asyncio.get_running_loop().time() - self._live_since >= self._backoff_max_s:
            self._retry_delay = self._backoff_initial_s
        self._recovery = asyncio.create_task(
            self._recover(bus, receiver), name=f"rovbus-can-{self._name}"
        )

    async def _recover(self, bus: can.BusABC | None, receiver: Receiver | None) -> None:
        await self._release(bus, receiver)
        await self._reopen()

    async def _reopen(self) -> None:
        delay = self._retry_delay
        attempts = 0
        while True:
            await asyncio.sleep(delay)
            attempts += 1
            try:
                bus = await self._create_bus()
            except CanError as exc:
                self._last_error = f"reopen: {exc}"
                held = self._log.allow("reopen")
                if held is not None:
                    log.warning(
                        "CAN bus %s: reopen attempt %d failed: %s", self._name, attempts, exc
                    )
                delay = min(delay * 2, self._backoff_max_s)
                continue
            self._counters.reopen_count += 1
            self._retry_delay = min(delay * 2, self._backoff_max_s)  # if it fails again soon
            self._recovery = None
            self._go_live(bus)
            log.info("CAN bus %s reopened after %d attempt(s)", self._name, attempts)
            return

    async def _release(self, bus: can.BusABC | None, receiver: Receiver | None) -> None:
        """Stop receiving, let the transmit worker leave ``bus.send``, shut the bus down."""
        try:
            if receiver is not None:
                receiver.stop()
                if not await asyncio.to_thread(receiver.join, 1.0):
                    log.warning("CAN bus %s: receive thread did not stop within 1 s", self._name)
            await self._tx.wait_worker(self._send_timeout_s + 0.5)
        finally:
            if bus is not None:
                with contextlib.suppress(Exception):
                    bus.shutdown()

    # -- closing ------------------------------------------------------------------------

    async def aclose(self, deadline: float = 1.0) -> None:
        """Stop receiving, let queued frames go out for up to ``deadline`` seconds, drop the
        rest, shut the bus down. Idempotent; releases the bus even when cancelled."""
        if self._close_task is None:
            self._closing = True
            self._close_task = asyncio.create_task(self._close(deadline))
        await asyncio.shield(self._close_task)

    async def _close(self, deadline: float) -> None:
        try:
            if self._state == "ok" and self._tx_enabled:
                await self._tx.wait_idle(deadline)
        finally:
            self._tx.detach()
            self._tx.drop_all(CanRefused, "port closed")
            self._session += 1
            recovery, self._recovery = self._recovery, None
            if recovery is not None:
                recovery.cancel()
                await asyncio.wait({recovery})
            bus, receiver = self._bus, self._receiver
            self._bus = self._receiver = None
            try:
                await self._release(bus, receiver)
            finally:
                self._tx.close()
                self._set_state("closed")

    async def __aenter__(self) -> CanPort:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- state --------------------------------------------------------------------------

    def _set_state(self, state: PortState) -> None:
        if state == self._state:
            return
        self._state = state
        if self._on_state is not None:
            try:
                self._on_state(self)
            except Exception:
                held = self._log.allow("on_state")
                if held is not None:
                    log.exception("CAN bus %s: on_state callback raised", self._name)

    def __repr__(self) -> str:
        config = self._config
        return f"<CanPort {self._name!r} {config.interface}:{config.channel} {self._state}>"


def _python_can_filters(
    filters: Sequence[CanFilter] | None,
) -> list[can.typechecking.CanFilter] | None:
    if not filters:
        return None
    return [{"can_id": f.id, "can_mask": f.mask, "extended": f.extended} for f in filters]


def _shutdown_created(task: asyncio.Future[can.BusABC]) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().shutdown()
