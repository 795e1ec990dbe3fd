"""Per-socket counters. Plain integers bumped on the hot path; snapshots for replies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(slots=True)
class Counters:
    """A base for a table of counters: dataclass fields bumped in place, and ``snapshot``,
    a copy of them as a dict for a reply's content."""

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class SocketStats(Counters):
    messages_in: int = 0
    messages_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    rejected: int = 0  # bad envelopes, bad signatures, replays
    dropped: int = 0  # could not be sent (high-water mark, peer gone)
    #: messages a publisher sent on a subscribed topic that never arrived, from per-topic
    #: sequence gaps (header ``seq``): a subscriber's count of what the publisher's socket
    #: or its own high-water mark dropped, which the publisher cannot see. Counted when a
    #: later message of the topic arrives; always 0 on sockets that do not subscribe.
    missed: int = 0

    def add(self, other: SocketStats) -> None:
        """Add ``other``'s counts to these (a sum over several sockets)."""
        self.messages_in += other.messages_in
        self.messages_out += other.messages_out
        self.bytes_in += other.bytes_in
        self.bytes_out += other.bytes_out
        self.rejected += other.rejected
        self.dropped += other.dropped
        self.missed += other.missed


def frames_size(frames: Sequence[bytes]) -> int:
    """Bytes of a multipart message on the wire: every frame, identities included."""
    return sum(map(len, frames))


@dataclass(slots=True)
class SubscriptionStats(Counters):
    """What a publisher's subscription guard counted (:mod:`rovbus.transport.subguard`)."""

    in_force: int = 0  # subscriptions held now (an upper bound: see the guard)
    peers: int = 0  # peer addresses holding any (0 where the guard cannot tell them apart)
    over_cap: int = 0  # times a peer went over its share or the total: refused, socket reset
    resets: int = 0  # times the socket was closed and bound again to free what it held
