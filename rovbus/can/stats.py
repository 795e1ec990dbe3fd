"""Counters of one CAN port and their frozen snapshot.

The port mutates a :class:`PortCounters` on the event loop thread only (the receive and
transmit threads hand their results over to the loop first), so the counters need no lock.
:meth:`PortCounters.snapshot` copies them into a :class:`PortStats`, the value the node puts
into its ``stats`` reply and status messages.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

__all__ = ["PortCounters", "PortState", "PortStats"]

#: ``closed``: not opened yet or closed; ``opening``: the first open is under way;
#: ``ok``: receiving and able to transmit; ``failed``: the bus raised, reopening with backoff.
PortState = Literal["closed", "opening", "ok", "failed"]


@dataclass(frozen=True, slots=True)
class PortStats:
    """A snapshot of one port's counters and state."""

    bus: str
    state: PortState
    last_error: str | None
    tx_enabled: bool
    #: frames received (data, remote and error frames)
    rx: int
    #: data bytes received
    rx_bytes: int
    #: frames put on the wire by this port
    tx: int
    #: data bytes put on the wire by this port
    tx_bytes: int
    #: failures of the bus (receive or transmit raised), each one followed by a reopen
    errors: int
    #: error frames received (already counted in ``rx`` too)
    error_frames: int
    #: frames whose ``bus.send`` raised
    tx_errors: int
    #: frames accepted into the transmit queue and then dropped before reaching the wire
    tx_dropped: int
    #: frames received but dropped because the event loop fell too far behind
    rx_dropped: int
    #: successful reopens after a failure
    reopen_count: int
    #: frames waiting in the transmit queue or being sent right now
    tx_queued: int
    #: exceptions raised by the ``on_frames`` consumer (the port goes on)
    callback_errors: int

    def as_dict(self) -> dict[str, Any]:
        """The snapshot as a plain dict (for a reply's content)."""
        return asdict(self)


class PortCounters:
    """Mutable counters, touched only on the event loop thread."""

    __slots__ = (
        "callback_errors",
        "error_frames",
        "errors",
        "reopen_count",
        "rx",
        "rx_bytes",
        "rx_dropped",
        "tx",
        "tx_bytes",
        "tx_dropped",
        "tx_errors",
    )

    def __init__(self) -> None:
        self.rx = 0
        self.rx_bytes = 0
        self.tx = 0
        self.tx_bytes = 0
        self.errors = 0
        self.error_frames = 0
        self.tx_errors = 0
        self.tx_dropped = 0
        self.rx_dropped = 0
        self.reopen_count = 0
        self.callback_errors = 0

    def snapshot(
        self,
        *,
        bus: str,
        state: PortState,
        last_error: str | None,
        tx_enabled: bool,
        tx_queued: int,
    ) -> PortStats:
        """Copy the counters into a frozen :class:`PortStats`."""
        return PortStats(
            bus=bus,
            state=state,
            last_error=last_error,
            tx_enabled=tx_enabled,
            rx=self.rx,
            rx_bytes=self.rx_bytes,
            tx=self.tx,
            tx_bytes=self.tx_bytes,
            errors=self.errors,
            error_frames=self.error_frames,
            tx_errors=self.tx_errors,
            tx_dropped=self.tx_dropped,
            rx_dropped=self.rx_dropped,
            reopen_count=self.reopen_count,
            tx_queued=tx_queued,
            callback_errors=self.callback_errors,
        )
