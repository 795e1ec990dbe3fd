"""Running something on a fixed timeline, without drift.

The k-th tick is due at ``start + k * interval`` on the loop's monotonic clock; a tick that
comes late does not push the ones after it, and ticks missed entirely (a stalled loop) are
skipped, not bunched.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable


async def tick_forever(interval: float, tick: Callable[[int], Awaitable[None] | None]) -> None:
    """Call ``tick(seq)`` every ``interval`` seconds, seq counting ticks since start (0, 1, ...);
    a tick that returns an awaitable is awaited before the next is scheduled."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    seq = 0
    while True:
        pending = tick(seq)
        if pending is not None:
            await pending
        seq += 1
        due = start + seq * interval
        now = loop.time()
        if now > due:  # stalled: skip the slots already gone
            seq = math.ceil((now - start) / interval)
            due = start + seq * interval
        await asyncio.sleep(due - now)
