"""Frame buffers the node keeps per bus: :class:`FrameBatcher` and :class:`RingBuffer`.

:class:`FrameBatcher` collects the frames of one bus into batches. The node publishes one
message per batch instead of one per frame when a bus has ``batch`` configured: frame count
per ZeroMQ message, not the codec, limits messages per second, so many frames per envelope
is how a node keeps up with several busy buses. A batch is flushed when it holds
``max_frames`` frames, or ``max_delay_s`` after its first frame arrived (a
``loop.call_later`` timer started by that first frame), whichever comes first. Adding a
frame is O(1) (one append and a length check).

:class:`RingBuffer` keeps the last N frames of a bus, for ``dump <bus> [n]``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Generic, TypeVar

from rovbus.wire.canframe import CanFrame

__all__ = ["FrameBatcher", "FrameRing", "RingBuffer"]

T = TypeVar("T")


class FrameBatcher:
    """Batches frames for ``flush(frames)``; use from the event loop thread only.

    ``flush`` is called with a new list each time, never an empty one. An exception it
    raises propagates to the caller of :meth:`add` / :meth:`extend` / :meth:`flush_now`,
    or, for a timed flush, to the loop's exception handler; the batch is gone either way.
    """

    def __init__(
        self,
        max_frames: int,
        max_delay_s: float,
        flush: Callable[[list[CanFrame]], None],
        *,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        if max_delay_s < 0:
            raise ValueError(f"max_delay_s must be >= 0, got {max_delay_s}")
        self._max_frames = max_frames
        self._max_delay_s = max_delay_s
        self._flush = flush
        self._loop = loop
        self._batch: list[CanFrame] = []
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def max_frames(self) -> int:
        return self._max_frames

    @property
    def max_delay_s(self) -> float:
        return self._max_delay_s

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        """Frames waiting in the current batch."""
        return len(self._batch)

    def add(self, frame: CanFrame) -> None:
        """Add one frame; flushes when the batch is full."""
        if self._closed:
            raise RuntimeError("FrameBatcher is closed")
        batch = self._batch
        batch.append(frame)
        n = len(batch)
        if n >= self._max_frames:
            self.flush_now()
        elif n == 1:
            self._start_timer()

    def extend(self, frames: Iterable[CanFrame]) -> None:
        """Add many frames in order; flushes each time the batch fills up."""
        if self._closed:
            raise RuntimeError("FrameBatcher is closed")
        items = frames if isinstance(frames, list | tuple) else list(frames)
        total = len(items)
        start = 0
        max_frames = self._max_frames
        while start < total:
            batch = self._batch
            was_empty = not batch
            take = max_frames - len(batch)
            batch.extend(items[start : start + take])
            start += take
            if len(batch) >= max_frames:
                self.flush_now()
            elif was_empty:
                self._start_timer()

    def flush_now(self) -> None:
        """Flush the current batch now (nothing happens when it is empty)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        batch = self._batch
        if not batch:
            return
        self._batch = []
        self._flush(batch)

    def close(self) -> None:
        """Flush what is pending and refuse further frames. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.flush_now()

    def _start_timer(self) -> None:
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._max_delay_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self.flush_now()


class RingBuffer(Generic[T]):
    """The newest ``maxlen`` items, oldest first; append is O(1) and evicts the oldest.

    The node keeps one ``RingBuffer[CanFrame]`` per bus and feeds it from ``on_frames``.
    """

    __slots__ = ("_items",)

    def __init__(self, maxlen: int) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got {maxlen}")
        self._items: deque[T] = deque(maxlen=maxlen)

    @property
    def maxlen(self) -> int:
        maxlen = self._items.maxlen
        assert maxlen is not None
        return maxlen

    def append(self, item: T) -> None:
        self._items.append(item)

    def extend(self, items: Iterable[T]) -> None:
        self._items.extend(items)

    def last(self, n: int | None = None) -> list[T]:
        """The newest ``n`` items (all when None), oldest first."""
        items = self._items
        if n is None or n >= len(items):
            return list(items)
        if n <= 0:
            return []
        newest = list(islice(reversed(items), n))
        newest.reverse()
        return newest

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items)


#: the ring the node keeps per bus
FrameRing = RingBuffer[CanFrame]
