"""The node table: what the heartbeats say about every node.

Fed with heartbeat messages (``<node>/hb``), it keeps per node the last heartbeat, the
liveness (alive / late / dead / restarted, by :class:`~rovbus.transport.LivenessTracker`)
and frame rates per bus, computed from the rx/tx counters of successive heartbeats. Nodes
the system file names but that were never heard from have the state ``unheard``.

No I/O and no clock of its own: callers pass ``now`` (monotonic seconds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rovbus.transport.liveness import LivenessTracker
from rovbus.wire.contents import Heartbeat, HelmBeat, read_heartbeat
from rovbus.wire.message import Message

__all__ = ["UNHEARD", "BusRow", "NodeRow", "NodeTable"]

#: the state of a node named in the system file but never heard from
UNHEARD = "unheard"


@dataclass(frozen=True, slots=True)
class BusRow:
    """One bus of a node, from its last heartbeat; rates in frames per second."""

    name: str
    state: str
    rx: int
    tx: int
    errors: int
    tx_enabled: bool
    rx_rate: float | None = None
    tx_rate: float | None = None
    #: the helm (None: the bus has none): its holder's name, else "failsafe" or "free"
    helm: str | None = None


def helm_text(state: HelmBeat | None) -> str | None:
    """A heartbeat's ``helm`` entry of one bus in a word: who holds it, or "failsafe"
    (no one; the failsafe frames written), or "free"; ``None``: the bus has no helm."""
    if state is None:
        return None
    if state["holder"]:
        return state["holder"]
    return "failsafe" if state["failsafe_active"] else "free"


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One node of the table. ``age`` is seconds since its last heartbeat (None: never)."""

    node: str
    group: str
    state: str  # a Liveness value, or UNHEARD
    age: float | None = None
    uptime: float | None = None
    node_state: str | None = None  # what the node says of itself: ok, degraded, stopping
    session: str | None = None
    restarts: int = 0
    missed: int = 0
    buses: tuple[BusRow, ...] = ()
    #: subscriptions in force at its publishers, and the times a subscriber went over the
    #: caps and was refused (``None``: the heartbeat does not say)
    subscriptions: int | None = None
    over_cap: int = 0

    @property
    def rx_rate(self) -> float | None:
        rates = [b.rx_rate for b in self.buses if b.rx_rate is not None]
        return sum(rates) if rates else None

    @property
    def tx_rate(self) -> float | None:
        rates = [b.tx_rate for b in self.buses if b.tx_rate is not None]
        return sum(rates) if rates else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "group": self.group,
            "state": self.state,
            "age": self.age,
            "uptime": self.uptime,
            "node_state": self.node_state,
            "session": self.session,
            "restarts": self.restarts,
            "missed": self.missed,
            "subscriptions": self.subscriptions,
            "over_cap": self.over_cap,
            "rx_rate": self.rx_rate,
            "tx_rate": self.tx_rate,
            "buses": {
                b.name: {
                    "state": b.state,
                    "rx": b.rx,
                    "tx": b.tx,
                    "errors": b.errors,
                    "tx_enabled": b.tx_enabled,
                    "rx_rate": b.rx_rate,
                    "tx_rate": b.tx_rate,
                    "helm": b.helm,
                }
                for b in self.buses
            },
        }


@dataclass(slots=True)
class _Seen:
    beat: Heartbeat
    rates: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


def _rate(new: int, old: int, dt: float) -> float | None:
    if dt <= 0 or new < old:  # counters reset (a restart)
        return None
    return (new - old) / dt


class NodeTable:
    """Heartbeats in, rows out."""

    def __init__(self, dead_after: int = 3, expected: Iterable[tuple[str, str]] = ()) -> None:
        self.tracker = LivenessTracker(dead_after)
        #: (node, group) the system file names, shown as UNHEARD until heard
        self.expected = dict(expected)
        self._seen: dict[str, _Seen] = {}

    def observe(self, message: Message, now: float) -> bool:
        """Take a heartbeat message; False (and nothing changes) for anything else, or a
        heartbeat without the fields it must have (``read_heartbeat``)."""
        if message.msg_type != "heartbeat":
            return False
        beat = read_heartbeat(message.content)
        if beat is None:
            return False
        name, session = beat["node"], beat["session"]
        life = self.tracker.nodes.get(name)
        restarted = life is not None and life.session != session
        self.tracker.observe(name, session, beat["seq"], beat["interval"], now)
        old = self._seen.get(name)
        seen = _Seen(beat)
        if old is not None and not restarted:
            dt = beat["uptime"] - old.beat["uptime"]
            for bus, stats in beat["buses"].items():
                before = old.beat["buses"].get(bus)
                if before is not None:
                    seen.rates[bus] = (
                        _rate(stats["rx"], before["rx"], dt),
                        _rate(stats["tx"], before["tx"], dt),
                    )
        self._seen[name] = seen
        return True

    def heard(self) -> set[str]:
        return set(self._seen)

    def rates_known(self) -> set[str]:
        """Nodes heard at least twice in the same session (their rates are known)."""
        return {name for name, seen in self._seen.items() if seen.rates or not seen.beat["buses"]}

    def rows(self, now: float) -> list[NodeRow]:
        """Every node heard or expected: expected ones in file order, then the others."""
        names = list(self.expected) + sorted(n for n in self._seen if n not in self.expected)
        return [self.row(name, now) for name in names]

    def row(self, name: str, now: float) -> NodeRow:
        seen = self._seen.get(name)
        life = self.tracker.nodes.get(name)
        state = self.tracker.state(name, now)
        if seen is None or life is None or state is None:
            return NodeRow(name, self.expected.get(name, ""), UNHEARD)
        beat = seen.beat
        helms = beat.get("helm", {})
        buses = tuple(
            BusRow(
                bus,
                stats["state"],
                stats["rx"],
                stats["tx"],
                stats["errors"],
                stats["tx_enabled"],
                *seen.rates.get(bus, (None, None)),
                helm_text(helms.get(bus)),
            )
            for bus, stats in beat["buses"].items()
        )
        subs = beat.get("subscriptions")
        return NodeRow(
            name,
            beat["group"] or self.expected.get(name, ""),
            str(state),
            now - life.last_seen,
            beat["uptime"],
            beat["state"] or None,
            life.session,
            life.restarts,
            life.missed,
            buses,
            subs["in_force"] if subs is not None else None,
            subs["over_cap"] if subs is not None else 0,
        )
