"""A CAN bus as a device on it sees it: every frame, with the monotonic time it came.

For the tools that time what reaches a bus (``bench_failsafe.py``) and the tests that
assert on it (``tests/helm``): a thread reads the python-can bus; :meth:`Wire.wait`
polls what it recorded, with a deadline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import can


@dataclass(frozen=True, slots=True)
class Seen:
    at: float  # monotonic, when the wire saw it
    id: int
    data: bytes


class Wire:
    """Another device on ``bus``: every frame it receives, in order."""

    def __init__(self, bus: can.BusABC) -> None:
        self.bus = bus
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True, name="canwire")
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            msg = self.bus.recv(0.05)
            if msg is not None:
                with self._lock:
                    self._seen.append(Seen(time.monotonic(), msg.arbitration_id, bytes(msg.data)))

    def frames(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def wait(self, predicate: Callable[[Seen], bool], after: int = 0, timeout: float = 10.0) -> int:
        """The index of the first frame from index ``after`` on that matches; TimeoutError
        after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            for index, seen in enumerate(self.frames()[after:], after):
                if predicate(seen):
                    return index
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no such frame on the bus within {timeout} s")
            time.sleep(0.001)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.bus.shutdown()
