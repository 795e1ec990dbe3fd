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


def helm_text(state: object) -> str | None:
    """A heartbeat's ``helm`` entry of one bus in a word: who holds it, or "failsafe"
    (no one; the failsafe frames written), or "free"."""
    if not isinstance(state, dict):
        return None
    holder = state.get("holder")
    if isinstance(holder, str) and holder:
        return holder
    return "failsafe" if state.get("failsafe_active") else "free"


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
    group: str
    content: dict[str, Any]
    uptime: float
    rates: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


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
        """Take a heartbeat message; False (and nothing changes) for anything else."""
        c = message.content
        if message.msg_type != "heartbeat":
            return False
        name, session, seq = c.get("node"), c.get("session"), c.get("seq")
        interval = c.get("interval")
        if not (isinstance(name, str) and isinstance(session, str) and isinstance(seq, int)):
            return False
        if not isinstance(interval, int | float) or interval <= 0:
            return False
        life = self.tracker.nodes.get(name)
        restarted = life is not None and life.session != session
        self.tracker.observe(name, session, seq, float(interval), now)
        uptime = c.get("uptime")
        uptime = float(uptime) if isinstance(uptime, int | float) else 0.0
        group = c.get("group") if isinstance(c.get("group"), str) else ""
        old = self._seen.get(name)
        seen = _Seen(str(group), dict(c), uptime)
        if old is not None and not restarted:
            dt = uptime - old.uptime
            old_buses = old.content.get("buses") or {}
            for bus, stats in (c.get("buses") or {}).items():
                before = old_buses.get(bus) if isinstance(old_buses, dict) else None
                if isinstance(stats, dict) and isinstance(before, dict):
                    seen.rates[bus] = (
                        _rate(_int(stats.get("rx")), _int(before.get("rx")), dt),
                        _rate(_int(stats.get("tx")), _int(before.get("tx")), dt),
                    )
        self._seen[name] = seen
        return True

    def heard(self) -> set[str]:
        return set(self._seen)

    def rates_known(self) -> set[str]:
        """Nodes heard at least twice in the same session (their rates are known)."""
        return {
            name for name, seen in self._seen.items() if seen.rates or not seen.content.get("buses")
        }

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
        buses = []
        helms = seen.content.get("helm")
        helms = helms if isinstance(helms, dict) else {}
        for bus, stats in (seen.content.get("buses") or {}).items():
            if not isinstance(stats, dict):
                continue
            rx_rate, tx_rate = seen.rates.get(bus, (None, None))
            buses.append(
                BusRow(
                    str(bus),
                    str(stats.get("state", "?")),
                    _int(stats.get("rx")),
                    _int(stats.get("tx")),
                    _int(stats.get("errors")),
                    bool(stats.get("tx_enabled", True)),
                    rx_rate,
                    tx_rate,
                    helm_text(helms.get(bus)),
                )
            )
        node_state = seen.content.get("state")
        subs = seen.content.get("subscriptions")
        subs = subs if isinstance(subs, dict) else {}
        return NodeRow(
            name,
            seen.group or self.expected.get(name, ""),
            str(state),
            now - life.last_seen,
            seen.uptime,
            node_state if isinstance(node_state, str) else None,
            life.session,
            life.restarts,
            life.missed,
            tuple(buses),
            _int(subs["in_force"]) if "in_force" in subs else None,
            _int(subs.get("over_cap")),
        )
