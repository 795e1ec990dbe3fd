"""The replay device: a CAN log file played onto a bus with its original timing.

Any format ``can.LogReader`` reads (candump ``-L``, ASC, BLF, TRC, CSV, ...). The file is
read once, in a worker thread, when the device starts; then each frame goes out at
``start + (timestamp - first) / speed`` on the loop's clock (frames due together go out
together, so a burst stays a burst). With ``loop``, the file starts over one median
inter-frame gap after its last frame; otherwise the device stops after the last frame.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
from pathlib import Path

import can

from rovbus.config.models import ReplayDevice
from rovbus.errors import ConfigError
from rovbus.sim.devices import Device, Emit

__all__ = ["Replay", "read_log"]


def read_log(path: Path) -> list[can.Message]:
    """Every data/remote frame of the log at ``path``, in file order; ConfigError naming
    the file if it cannot be read."""
    if not path.is_file():
        raise ConfigError(str(path), [f"replay file {path} does not exist"])
    try:
        with can.LogReader(str(path)) as reader:
            messages = [m for m in reader if not m.is_error_frame]
    except Exception as exc:  # python-can raises whatever its parser hits
        raise ConfigError(str(path), [f"cannot read replay file {path}: {exc}"]) from None
    for msg in messages:
        msg.channel = None  # the bus's own channel, not the one in the file
    return messages


class Replay(Device):
    kind = "replay"

    def __init__(self, config: ReplayDevice) -> None:
        super().__init__("replay")
        self.config = config
        self.rounds = 0
        self.frames: list[can.Message] | None = None

    async def load(self) -> list[can.Message]:
        if self.frames is None:
            self.frames = await asyncio.to_thread(read_log, self.config.file)
        return self.frames

    async def run(self, emit: Emit) -> None:
        frames = await self.load()
        if not frames:
            return
        speed = self.config.speed
        first = frames[0].timestamp
        offsets = [max(0.0, (m.timestamp - first) / speed) for m in frames]
        gaps = [b - a for a, b in itertools.pairwise(offsets) if b > a]
        restart_gap = statistics.median(gaps) if gaps else 0.01
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            i = 0
            n = len(frames)
            while i < n:
                delay = start + offsets[i] - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                # frame i is due now, even on a clock that rounds (or has not moved)
                now = max(loop.time() - start, offsets[i])
                j = i
                while j < n and offsets[j] <= now:
                    j += 1
                emit(frames[i:j])
                self.sent += j - i
                i = j
            self.rounds += 1
            if not self.config.loop:
                return
            start += offsets[-1] + restart_gap

    def status(self) -> dict[str, object]:
        return {**super().status(), "file": str(self.config.file), "rounds": self.rounds}
