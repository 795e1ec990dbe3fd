"""Running a device on the event loop's own timeline, with no wall clock in it.

``VirtualTimeLoop``'s clock stands still while there is work to do and jumps to the next
timer when there is none, so a coroutine that sleeps on loop time (every simulated
device does) runs its exact timeline, however busy the machine is.
"""

from __future__ import annotations

import asyncio

import can

from rovbus.sim.devices import Device
from rovbus.sim.replay import Replay


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` moves only from timer to timer. For coroutines that
    wait on timers alone: a wait on I/O or a thread lets the clock run on past it."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0

    def time(self) -> float:
        return self._now

    def _run_once(self) -> None:
        # private to asyncio's BaseEventLoop (stable since 3.4): what is ready, the timers
        ready, timers = self._ready, self._scheduled  # type: ignore[attr-defined]
        if not ready and timers:
            self._now = max(self._now, timers[0].when())
        super()._run_once()  # type: ignore[misc]


def timeline(device: Device, seconds: float) -> list[tuple[float, can.Message]]:
    """What ``device`` emits in its first ``seconds`` on a virtual clock: (time since it
    started, frame), in order."""
    emitted: list[tuple[float, can.Message]] = []

    async def main() -> None:
        if isinstance(device, Replay):
            await device.load()  # read in a thread, before any timer could move the clock
        loop = asyncio.get_running_loop()
        start = loop.time()
        task = asyncio.create_task(
            device.run(lambda frames: emitted.extend((loop.time() - start, f) for f in frames))
        )
        await asyncio.sleep(seconds)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
        runner.run(main())
    return [(t, frame) for t, frame in emitted if t < seconds]
