"""The node's transmit log: the last frames it put on its buses, each with its origin.

Fed from the node's CAN stream (the ``tx`` bursts its ports report); read by
``tx_log_request`` on shell (:meth:`TxLog.answer`). One ring of ``size`` frames for the
whole node (``nodes.NAME.tx_log`` in the system file), so what it holds is bounded
whatever clients send: each frame at most 64 bytes of data, and its origin's texts cut to
fixed lengths (:mod:`rovbus.wire.origin`); the frames of one request share one origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rovbus.can.buffers import RingBuffer
from rovbus.wire.canframe import CanFrame
from rovbus.wire.message import Message

__all__ = ["REPLY_MAX", "TxLog"]

#: the most frames one ``tx_log_reply`` carries (the newest), so a reply stays a few
#: hundred kilobytes however large the log is
REPLY_MAX = 4096


class TxLog:
    """The last ``size`` frames node ``node`` transmitted on ``buses`` (``size`` 0: none)."""

    def __init__(self, node: str, buses: Sequence[str], size: int) -> None:
        self.node = node
        self.buses = tuple(buses)
        self.size = size
        #: frames logged since the node started (the log keeps the last ``size``)
        self.logged = 0
        self._ring: RingBuffer[CanFrame] | None = RingBuffer(size) if size > 0 else None

    def note(self, frames: list[CanFrame]) -> None:
        """A burst of one port: kept when it is frames the port transmitted. A burst is
        all received or all transmitted."""
        if frames and frames[0].direction == "tx" and self._ring is not None:
            self._ring.extend(frames)
            self.logged += len(frames)

    def last(self, bus: str | None = None, limit: int | None = None) -> list[CanFrame]:
        """The newest ``limit`` frames kept (all when None), of ``bus`` or every bus,
        oldest first."""
        if self._ring is None:
            return []
        if bus is None:
            return self._ring.last(limit)
        picked: list[CanFrame] = []
        for frame in reversed(self._ring.last()):
            if limit is not None and len(picked) >= limit:
                break
            if frame.bus == bus:
                picked.append(frame)
        picked.reverse()
        return picked

    async def answer(self, request: Message) -> dict[str, Any]:
        """The reply to ``tx_log_request`` (``bus``, ``limit``, both optional; at most
        :data:`REPLY_MAX` frames); raises ``ValueError`` naming the bad field."""
        bus = request.content.get("bus")
        if bus is not None and bus not in self.buses:
            known = ", ".join(self.buses) or "none"
            raise ValueError(f"node {self.node} has no bus {bus!r:.80}; it has {known}")
        limit = request.content.get("limit", REPLY_MAX)
        if type(limit) is not int or not 1 <= limit <= REPLY_MAX:
            raise ValueError(
                f"'limit' must be a whole number of frames from 1 to {REPLY_MAX}, got {limit!r:.40}"
            )
        return {
            "status": "ok",
            "node": self.node,
            "size": self.size,
            "logged": self.logged,
            "frames": [frame.to_content() for frame in self.last(bus, limit)],
        }
