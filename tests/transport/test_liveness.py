"""Liveness from heartbeats: alive, late, dead, restarted, and the missed count.

The tracker takes ``now`` from its caller, so every rule is checked at chosen instants
without waiting. The interval is 0.2 s (the test systems' heartbeat), not 1, so a rule
that divided by the interval instead of multiplying would show.
"""

from __future__ import annotations

import pytest

from rovbus.transport import Liveness, LivenessTracker

INTERVAL = 0.2


def beats(tracker: LivenessTracker, name: str, session: str, seqs: range, start: float) -> float:
    """Heartbeats ``seqs`` one interval apart from ``start``; returns the time of the last."""
    now = start
    for i, seq in enumerate(seqs):
        now = start + i * INTERVAL
        tracker.observe(name, session, seq, INTERVAL, now)
    return now


def test_a_node_is_alive_then_late_after_one_and_a_half_intervals_then_dead() -> None:
    tracker = LivenessTracker()  # dead after 3 intervals
    assert tracker.state("alpha", 0.0) is None  # never heard from
    life = tracker.observe("alpha", "s1", 0, INTERVAL, 10.0)
    assert (life.name, life.session, life.restarts, life.missed) == ("alpha", "s1", 0, 0)
    assert tracker.state("alpha", 10.0) == Liveness.ALIVE  # from its very first heartbeat
    assert tracker.state("alpha", 10.0 + 1.4 * INTERVAL) == Liveness.ALIVE
    assert tracker.state("alpha", 10.0 + 1.6 * INTERVAL) == Liveness.LATE
    assert tracker.state("alpha", 10.0 + 2.9 * INTERVAL) == Liveness.LATE
    assert tracker.state("alpha", 10.0 + 3.1 * INTERVAL) == Liveness.DEAD
    tracker.observe("alpha", "s1", 1, INTERVAL, 20.0)  # heard again: alive, same session
    assert tracker.state("alpha", 20.0) == Liveness.ALIVE
    assert tracker.nodes["alpha"].restarts == 0


def test_dead_after_counts_intervals_and_is_at_least_one() -> None:
    tracker = LivenessTracker(dead_after=1)
    tracker.observe("alpha", "s1", 0, INTERVAL, 0.0)
    assert tracker.state("alpha", 0.9 * INTERVAL) == Liveness.ALIVE
    assert tracker.state("alpha", 1.1 * INTERVAL) == Liveness.DEAD  # dead before it is late
    with pytest.raises(ValueError, match=r"dead_after must be at least 1 interval, got 0"):
        LivenessTracker(dead_after=0)


def test_each_node_has_its_own_state() -> None:
    tracker = LivenessTracker()
    tracker.observe("alpha", "a", 0, INTERVAL, 0.0)
    tracker.observe("beta", "b", 0, INTERVAL, 5 * INTERVAL)
    assert tracker.states(5 * INTERVAL) == {"alpha": Liveness.DEAD, "beta": Liveness.ALIVE}


def test_a_new_session_is_restarted_for_dead_after_intervals_then_alive() -> None:
    tracker = LivenessTracker()
    last = beats(tracker, "alpha", "s1", range(10), 0.0)
    restart = last + INTERVAL
    beats(tracker, "alpha", "s2", range(20), restart)  # heartbeats go on through the window
    assert tracker.state("alpha", restart) == Liveness.RESTARTED
    assert tracker.state("alpha", restart + 2.9 * INTERVAL) == Liveness.RESTARTED
    assert tracker.state("alpha", restart + 3.1 * INTERVAL) == Liveness.ALIVE
    life = tracker.nodes["alpha"]
    assert (life.session, life.restarts) == ("s2", 1)  # one restart, however long s2 lasts
    beats(tracker, "alpha", "s3", range(1), restart + 20 * INTERVAL)
    assert tracker.nodes["alpha"].restarts == 2


def test_a_restarted_node_that_goes_quiet_is_late_then_dead() -> None:
    tracker = LivenessTracker()
    tracker.observe("alpha", "s1", 0, INTERVAL, 0.0)
    tracker.observe("alpha", "s2", 0, INTERVAL, INTERVAL)
    assert tracker.state("alpha", INTERVAL + 1.6 * INTERVAL) == Liveness.LATE
    assert tracker.state("alpha", INTERVAL + 3.1 * INTERVAL) == Liveness.DEAD


def test_missed_counts_the_heartbeats_absent_between_two_that_arrived() -> None:
    tracker = LivenessTracker()
    now = beats(tracker, "alpha", "s1", range(3), 0.0)  # 0, 1, 2: nothing missed
    assert tracker.nodes["alpha"].missed == 0
    tracker.observe("alpha", "s1", 5, INTERVAL, now + 3 * INTERVAL)  # 3 and 4 lost
    assert tracker.nodes["alpha"].missed == 2
    tracker.observe("alpha", "s1", 6, INTERVAL, now + 4 * INTERVAL)
    tracker.observe("alpha", "s1", 8, INTERVAL, now + 6 * INTERVAL)  # 7 lost
    assert tracker.nodes["alpha"].missed == 3  # the losses add up


def test_a_heartbeat_heard_twice_is_not_a_gap() -> None:
    tracker = LivenessTracker()
    for seq in (0, 0, 1, 1, 2):  # e.g. a client that hears the node over two paths
        tracker.observe("alpha", "s1", seq, INTERVAL, seq * INTERVAL)
    assert tracker.nodes["alpha"].missed == 0


def test_a_restart_starting_its_numbers_again_is_not_counted_as_missed() -> None:
    tracker = LivenessTracker()
    now = beats(tracker, "alpha", "s1", range(100), 0.0)
    tracker.observe("alpha", "s2", 0, INTERVAL, now + INTERVAL)
    tracker.observe("alpha", "s2", 1, INTERVAL, now + 2 * INTERVAL)
    assert tracker.nodes["alpha"].missed == 0
