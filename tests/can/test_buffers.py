"""FrameBatcher and RingBuffer."""

from __future__ import annotations

import asyncio

import pytest

from rovbus.can import FrameBatcher, RingBuffer
from rovbus.wire.canframe import CanFrame


def frames(n: int, start: int = 0) -> list[CanFrame]:
    return [CanFrame("main", (start + i) & 0x7FF, (start + i).to_bytes(4, "big")) for i in range(n)]


class Flushes:
    def __init__(self) -> None:
        self.batches: list[list[CanFrame]] = []
        self.event = asyncio.Event()

    def __call__(self, batch: list[CanFrame]) -> None:
        self.batches.append(batch)
        self.event.set()


async def test_flushes_on_count() -> None:
    out = Flushes()
    batcher = FrameBatcher(4, 60.0, out)
    for f in frames(3):
        batcher.add(f)
    assert out.batches == []
    batcher.extend(frames(10, start=3))  # 13 in all: three full batches, one left
    assert [len(b) for b in out.batches] == [4, 4, 4]
    assert len(batcher) == 1
    batcher.close()
    assert [f.data for b in out.batches for f in b] == [f.data for f in frames(13)]


async def test_flushes_on_time() -> None:
    out = Flushes()
    batcher = FrameBatcher(1000, 0.01, out)
    batcher.extend(frames(3))
    async with asyncio.timeout(5):
        await out.event.wait()
    assert [len(b) for b in out.batches] == [3]
    assert len(batcher) == 0
    # the next batch starts a new timer
    out.event.clear()
    batcher.add(frames(1)[0])
    async with asyncio.timeout(5):
        await out.event.wait()
    assert [len(b) for b in out.batches] == [3, 1]
    batcher.close()


async def test_flush_now_and_close() -> None:
    out = Flushes()
    batcher = FrameBatcher(10, 60.0, out)
    batcher.flush_now()
    assert out.batches == []
    batcher.extend(frames(2))
    batcher.flush_now()
    assert [len(b) for b in out.batches] == [2]
    batcher.add(frames(1)[0])
    batcher.close()
    batcher.close()
    assert [len(b) for b in out.batches] == [2, 1]
    with pytest.raises(RuntimeError):
        batcher.add(frames(1)[0])


def test_batcher_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="max_frames"):
        FrameBatcher(0, 1.0, lambda b: None)
    with pytest.raises(ValueError, match="max_delay_s"):
        FrameBatcher(1, -1.0, lambda b: None)


def test_ring_buffer_keeps_the_newest() -> None:
    ring: RingBuffer[CanFrame] = RingBuffer(5)
    assert ring.last(3) == []
    ring.extend(frames(3))
    assert ring.last() == frames(3)
    ring.extend(frames(4, start=3))
    assert len(ring) == 5
    assert ring.last() == frames(5, start=2)
    assert ring.last(2) == frames(2, start=5)
    assert ring.last(0) == []
    assert ring.last(99) == frames(5, start=2)
    ring.append(frames(1, start=7)[0])
    assert list(ring) == frames(5, start=3)
    with pytest.raises(ValueError, match="maxlen"):
        RingBuffer(0)
