"""Turning heartbeats into alive / late / dead / restarted, per node.

No I/O and no clock of its own: callers pass ``now`` (monotonic seconds), so the rules
are testable without waiting. A node is *late* once one interval and a half has passed
since its last heartbeat, *dead* after ``dead_after`` intervals, and *restarted* for one
``dead_after`` span after its session id changed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Liveness(enum.StrEnum):
    ALIVE = "alive"
    LATE = "late"
    DEAD = "dead"
    RESTARTED = "restarted"


@dataclass(slots=True)
class NodeLife:
    name: str
    session: str
    interval: float
    last_seen: float
    last_seq: int  # the highest of this session
    restarts: int = 0
    restarted_at: float | None = None
    missed: int = 0  # heartbeats lost (gaps in sequence numbers within a session)


class LivenessTracker:
    def __init__(self, dead_after: int = 3) -> None:
        if dead_after < 1:
            raise ValueError(f"dead_after must be at least 1 interval, got {dead_after}")
        self.dead_after = dead_after
        self.nodes: dict[str, NodeLife] = {}

    def observe(self, name: str, session: str, seq: int, interval: float, now: float) -> NodeLife:
        """Record a heartbeat from ``name``; returns its entry."""
        life = self.nodes.get(name)
        if life is None:
            life = self.nodes[name] = NodeLife(name, session, interval, now, seq)
            return life
        if session != life.session:
            life.session = session
            life.restarts += 1
            life.restarted_at = now
            life.last_seq = seq
        elif seq > life.last_seq:  # a repeated or older one (a cache's replay) is no news
            life.missed += seq - life.last_seq - 1
            life.last_seq = seq
        life.interval = interval
        life.last_seen = now
        return life

    def state(self, name: str, now: float) -> Liveness | None:
        """The node's state at ``now``; ``None`` for a node never heard from."""
        life = self.nodes.get(name)
        if life is None:
            return None
        age = now - life.last_seen
        if age > self.dead_after * life.interval:
            return Liveness.DEAD
        if age > 1.5 * life.interval:
            return Liveness.LATE
        if life.restarted_at is not None and now - life.restarted_at <= (
            self.dead_after * life.interval
        ):
            return Liveness.RESTARTED
        return Liveness.ALIVE
