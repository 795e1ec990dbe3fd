"""python-can buses inside an asyncio loop: receive, transmit, filters, batching.

What this layer promises the node:

- A :class:`CanPort` per configured bus. Received frames, and the frames the port put on
  the wire (``direction="tx"``), reach ``on_frames(list[CanFrame])`` on the loop thread, in
  order, in lists (one call per burst, not per frame). The loop is never blocked by the
  bus: a descriptor is watched with ``loop.add_reader``; a bus without one is read by a
  thread whose hand-over to the loop is coalesced.
- :meth:`CanPort.send` checks every frame (bus, error frame, FD on a classic bus, its ID
  in its format in ``tx_allow``) before anything goes out: all or nothing. Frames go
  through a bounded queue (``queue_size``; a call that does not fit is refused whole) to
  one worker thread that calls ``bus.send`` in order; ``send`` returns when they are on
  the wire.
- Transmit can be disabled (drops the queue; it stays disabled across a reopen) and the
  queue dropped on interrupt; drops are counted, their senders get
  :class:`~rovbus.errors.CanRefused` (:class:`~rovbus.errors.CanFailed` when the bus
  failed).
- A bus that raises goes ``failed``, is shut down and reopened with exponential backoff;
  queued frames are dropped, never sent late. Nothing else stops.
- :meth:`CanPort.aclose` is idempotent and always shuts the bus down.
- Per-frame events are counters (:class:`PortStats`); logging is only for failures and
  reopens, rate-limited.

Helpers for the node: :class:`FrameBatcher` (flush on count or delay) and
:class:`RingBuffer` (the last N frames of a bus).

Imports only :mod:`rovbus.errors`, :mod:`rovbus.wire` and :mod:`rovbus.config` (and
python-can).
"""

from __future__ import annotations

from .buffers import FrameBatcher, FrameRing, RingBuffer
from .port import CanPort
from .receive import TimestampSource
from .stats import PortState, PortStats
from .transmit import tx_refusal

__all__ = [
    "CanPort",
    "FrameBatcher",
    "FrameRing",
    "PortState",
    "PortStats",
    "RingBuffer",
    "TimestampSource",
    "tx_refusal",
]
