"""Per-socket counters. Plain integers bumped on the hot path; snapshots for replies."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class SocketStats:
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    rejected: int = 0  # bad envelopes, bad signatures, replays
    dropped: int = 0  # could not be sent (high-water mark, peer gone)

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)


def frames_size(frames: list[bytes]) -> int:
    return sum(len(f) for f in frames)
