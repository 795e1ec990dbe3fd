"""Liveness from heartbeats: the missed count, the ``restarted`` window and the late and
dead boundaries, exactly (the node table is fed heartbeat envelopes and the times they
arrived, so the rules are checked at their edges without waiting); then the same rules on
the heartbeats of a real node process that is stopped, resumed, killed and restarted."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq

from rovbus.client import NodeTable
from rovbus.config import load_system
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from tests.helpers.daemons import node_process
from tests.helpers.systemfile import node_toml

CODEC = Codec()
INTERVAL = 0.5  # binary-exact, so the boundaries below are exact
DEAD_AFTER = 3


def beat(seq: int, session: str = "s1", interval: float = INTERVAL) -> Message:
    """A heartbeat of node alpha as it arrives: encoded and decoded."""
    content = {
        "seq": seq,
        "node": "alpha",
        "group": "vehicle",
        "session": session,
        "uptime": seq * interval,
        "interval": interval,
        "state": "ok",
        "buses": {"can0": {"state": "ok", "rx": 0, "tx": 0, "errors": 0, "tx_enabled": True}},
        "rejected": 0,
    }
    message = CODEC.message("heartbeat", content, identities=(b"alpha/hb",))
    return CODEC.decode(CODEC.encode(message))


def table_fed(*beats: tuple[float, Message]) -> NodeTable:
    table = NodeTable(DEAD_AFTER, [("alpha", "vehicle")])
    for now, message in beats:
        assert table.observe(message, now)
    return table


def test_missed_counts_each_heartbeat_skipped_in_a_session() -> None:
    table = table_fed((0.0, beat(0)), (0.5, beat(1)), (1.0, beat(2)))
    assert table.row("alpha", 1.0).missed == 0  # in a row: none missed
    table.observe(beat(5), 2.5)  # 3 and 4 never came
    assert table.row("alpha", 2.5).missed == 2
    table.observe(beat(6), 3.0)
    assert table.row("alpha", 3.0).missed == 2
    table.observe(beat(6), 3.1)  # the same again (a last-value cache replays)
    table.observe(beat(4), 3.2)  # an older one (a second cache, further out, replays)
    assert table.row("alpha", 3.2).missed == 2
    table.observe(beat(7), 3.5)  # the next: nothing missed since 6
    assert table.row("alpha", 3.5).missed == 2
    table.observe(beat(9, session="s2"), 4.0)  # restarted, first heard at 9: not a gap
    assert table.row("alpha", 4.0).missed == 2
    table.observe(beat(11, session="s2"), 5.0)  # 10 never came
    assert table.row("alpha", 5.0).missed == 3


def test_restarted_lasts_dead_after_intervals_from_the_new_session() -> None:
    table = table_fed((100.0, beat(7)))
    assert table.row("alpha", 100.0).state == "alive"  # the first heard is no restart
    assert table.row("alpha", 100.0).restarts == 0
    window = DEAD_AFTER * INTERVAL
    table.observe(beat(0, session="s2"), 101.0)
    t = 101.0
    while t < 101.0 + window:  # heartbeats keep coming on time
        assert table.row("alpha", t).state == "restarted", t
        t += INTERVAL
        table.observe(beat(int((t - 101.0) / INTERVAL), session="s2"), t)
    assert t == 101.0 + window
    assert table.row("alpha", t).state == "restarted"  # the window's last instant
    assert table.row("alpha", t + 0.001).state == "alive"
    row = table.row("alpha", t + 0.001)
    assert (row.restarts, row.session, row.missed) == (1, "s2", 0)
    table.observe(beat(0, session="s3"), t + 1.0)  # and again
    assert table.row("alpha", t + 1.0).state == "restarted"
    assert table.row("alpha", t + 1.0).restarts == 2


def test_late_after_one_and_a_half_intervals_dead_after_dead_after() -> None:
    table = table_fed((10.0, beat(0)))
    assert table.row("alpha", 10.0 + 1.5 * INTERVAL).state == "alive"
    assert table.row("alpha", 10.0 + 1.5 * INTERVAL + 0.001).state == "late"
    assert table.row("alpha", 10.0 + DEAD_AFTER * INTERVAL).state == "late"
    assert table.row("alpha", 10.0 + DEAD_AFTER * INTERVAL + 0.001).state == "dead"
    # a node that restarted and then went quiet is late, then dead, not "restarted"
    table.observe(beat(0, session="s2"), 20.0)
    assert table.row("alpha", 20.0 + 1.5 * INTERVAL + 0.001).state == "late"
    assert table.row("alpha", 20.0 + DEAD_AFTER * INTERVAL + 0.001).state == "dead"
    # the node's own interval rules: a slower one is late later
    table.observe(beat(1, session="s2", interval=2.0), 30.0)
    assert table.row("alpha", 30.0 + 2.9).state == "alive"
    assert table.row("alpha", 30.0 + 3.1).state == "late"


def test_dead_after_one_interval_is_allowed_and_zero_is_not() -> None:
    table = NodeTable(1, [("alpha", "vehicle")])  # [system] dead_after = 1
    table.observe(beat(0), 10.0)
    assert table.row("alpha", 10.0 + INTERVAL).state == "alive"
    assert table.row("alpha", 10.0 + INTERVAL + 0.001).state == "dead"  # before it is late
    with pytest.raises(ValueError, match="dead_after must be at least 1 interval, got 0"):
        NodeTable(0)


# -- a real node -------------------------------------------------------------------------------

REAL_INTERVAL = 0.2


class Watcher:
    """A SUB on the node's heartbeats feeding a node table with the times they arrive,
    keeping what it saw (session, seq) to check the table against."""

    def __init__(self, endpoint: str) -> None:
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.sub = self.ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"alpha/hb")
        self.sub.connect(endpoint)
        self.table = NodeTable(DEAD_AFTER, [("alpha", "vehicle")])
        self.seen: list[tuple[str, int]] = []
        self.restarted_at: float | None = None

    def state(self) -> str:
        return self.table.row("alpha", time.monotonic()).state

    def until(self, state: str, timeout: float = 15.0) -> float:
        """Read heartbeats until the table says ``state``; the time it first did."""
        self.read_until(lambda: self.state() == state, f"alpha {state}", timeout)
        return time.monotonic()

    def read_until(self, check: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"not {what} within {timeout} s: {self.seen}"
            if self.sub.poll(20):
                message = Codec().decode(self.sub.recv_multipart())
                arrived = time.monotonic()
                session = message.content["session"]
                if self.seen and self.seen[-1][0] != session:
                    self.restarted_at = arrived
                self.seen.append((session, message.content["seq"]))
                self.table.observe(message, arrived)

    def gaps(self) -> int:
        """Heartbeats skipped within a session, from what was seen."""
        return sum(
            max(0, seq - last - 1)
            for (session, seq), (last_session, last) in zip(self.seen[1:], self.seen, strict=False)
            if session == last_session
        )

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def test_a_real_node_stopped_resumed_and_restarted(write_system, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    config = write_system(node_toml("alpha"), interval=REAL_INTERVAL)
    watcher = Watcher(str(load_system(config).node("alpha").endpoints.pub))
    try:
        with node_process(config, "alpha", tmp_path) as (proc, systemd):
            systemd.wait_for("READY=1")
            watcher.until("alive")
            # stopped (a stalled computer): late, then dead; resumed, it skips the beats
            # it could not send, and the table counts exactly those as missed
            proc.send_signal(signal.SIGSTOP)
            watcher.until("late")
            watcher.until("dead")
            proc.send_signal(signal.SIGCONT)
            watcher.until("alive")
            # the beat it was sleeping for goes out late; the skip shows in the next one
            watcher.read_until(lambda: watcher.gaps() > 0, "a gap in the heartbeats")
            row = watcher.table.row("alpha", time.monotonic())
            assert row.missed == watcher.gaps(), watcher.seen
            assert row.restarts == 0
            proc.send_signal(signal.SIGKILL)
            watcher.until("dead")
        with node_process(config, "alpha", tmp_path) as (proc, systemd):
            systemd.wait_for("READY=1")
            watcher.until("restarted")
            alive = watcher.until("alive")  # the window ends by itself
            assert watcher.restarted_at is not None
            # by the table's rule, on the times it was given: not before the window is over
            assert alive - watcher.restarted_at > DEAD_AFTER * REAL_INTERVAL
            row = watcher.table.row("alpha", time.monotonic())
            assert row.restarts == 1
            assert row.missed == watcher.gaps()  # the new session's seq 0 is no gap
    finally:
        watcher.close()
