"""The shapes of what daemons say about themselves: the ``heartbeat`` on ``<name>/hb`` and
the replies to ``node_info_request`` and ``stats_request`` (docs/protocol.md), defined
once for the daemons that build them and the tools that read them.

A heartbeat comes from a peer: ``read_heartbeat`` takes one only when its fields have
their types (what a reader may leave out has a default), so readers index it and never
guess. The daemons build theirs with the pure functions next to them
(rovbus/node/contents.py, rovbus/forwarder/daemon.py).
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

__all__ = [
    "BusBeat",
    "BusInfo",
    "ForwarderInfo",
    "ForwarderStats",
    "Heartbeat",
    "HelmBeat",
    "NodeInfo",
    "NodeStats",
    "SubscriptionsBeat",
    "read_heartbeat",
]


class BusBeat(TypedDict):
    """One bus in a node's heartbeat; counters since the node started."""

    state: str
    rx: int
    tx: int
    errors: int
    tx_enabled: bool


class SubscriptionsBeat(TypedDict):
    """A daemon's subscription caps in its heartbeat (transport/subguard.py)."""

    in_force: int
    over_cap: int
    refused: int


class HelmBeat(TypedDict):
    """The helm of one bus (``helm_status`` content per bus, a heartbeat's ``helm``):
    who holds it (``None``: no one), since when (node clock, seconds since the epoch), the
    lease and what is left of it, whether the failsafe frames are what the bus last got,
    why the helm last changed, and the failsafe writes done and failed."""

    holder: str | None
    session: str | None
    since: float | None
    lease_ms: int
    lease_left_ms: int
    failsafe_active: bool
    reason: str
    failsafe_writes: int
    failsafe_failures: int


class Heartbeat(TypedDict):
    """``heartbeat`` content: a node's, or (``kind`` ``"forwarder"``) a forwarder's, whose
    ``group`` is its outer group and ``buses`` empty. A forwarder's last heartbeat, as it
    stops, carries only the fields every heartbeat has (and ``kind``)."""

    seq: int
    node: str
    group: str
    session: str
    uptime: float
    interval: float
    state: str
    buses: dict[str, BusBeat]
    rejected: NotRequired[int]
    subscriptions: NotRequired[SubscriptionsBeat]
    helm: NotRequired[dict[str, HelmBeat]]
    kind: NotRequired[Literal["forwarder"]]
    inner: NotRequired[str]
    nodes: NotRequired[list[str]]
    pub: NotRequired[dict[str, Any]]
    requests: NotRequired[dict[str, Any]]


class BusInfo(TypedDict):
    """One bus in a node's ``node_info_reply``."""

    name: str
    interface: str
    channel: str | int
    bitrate: int | None
    fd: bool
    state: str
    tx_enabled: bool
    batch: dict[str, Any] | None


class NodeInfo(TypedDict):
    """A node's ``node_info_reply`` content, without ``status``."""

    node: str
    group: str
    version: str
    session: str
    uptime: float
    state: str
    serializer: str
    signed: bool
    endpoints: dict[str, str]
    buses: list[BusInfo]


class NodeStats(TypedDict):
    """A node's ``stats_reply`` content, without ``status``: per bus the port's counters
    (can/stats.py), per socket its counters (transport/stats.py), the subscription caps,
    and per request channel what its dispatcher took and dropped (daemon/dispatch.py)."""

    node: str
    uptime: float
    buses: dict[str, dict[str, Any]]
    sockets: dict[str, dict[str, Any]]
    subscriptions: dict[str, Any]
    dispatch: dict[str, dict[str, int]]


class ForwarderStats(TypedDict):
    """A forwarder's ``stats_reply`` content, without ``status`` (docs/architecture.md,
    The forwarder): its pub path, cache, requests routed, control channel, subscription
    caps, control requests taken (``dispatch``) and, with CURVE, handshakes."""

    forwarder: str
    uptime: float
    pub: dict[str, Any]
    lvc: dict[str, Any]
    requests: dict[str, Any]
    control: dict[str, Any]
    subscriptions: dict[str, Any]
    dispatch: dict[str, dict[str, int]]
    curve: NotRequired[dict[str, Any]]


class ForwarderInfo(TypedDict):
    """A forwarder's ``node_info_reply`` content, without ``status``."""

    node: str
    forwarder: str
    kind: Literal["forwarder"]
    version: str
    session: str
    uptime: float
    state: str
    inner: str
    outer: str
    group: str
    nodes: list[dict[str, Any]]
    forwarders: list[str]
    endpoints: dict[str, str]
    inner_sources: list[str]
    signed: bool
    curve: bool
    request_timeout: float
    serializer: str
    counters: ForwarderStats


def _count(value: object) -> int:
    """A counter as sent: an int (not a bool), else 0."""
    return value if type(value) is int else 0


def _number(value: object) -> float | None:
    """A number as sent (an int or a float, not a bool), else ``None``."""
    return float(value) if type(value) is int or type(value) is float else None


def _bus(value: object) -> BusBeat | None:
    if not isinstance(value, dict):
        return None
    state, tx_enabled = value.get("state"), value.get("tx_enabled", True)
    return {
        "state": state if isinstance(state, str) else "?",
        "rx": _count(value.get("rx")),
        "tx": _count(value.get("tx")),
        "errors": _count(value.get("errors")),
        "tx_enabled": tx_enabled if isinstance(tx_enabled, bool) else True,
    }


def read_heartbeat(content: dict[str, Any]) -> Heartbeat | None:
    """``content`` as a ``Heartbeat`` when it names a node, its session, a ``seq`` and a
    positive ``interval``; else ``None``. A field of the wrong type reads as its default
    (``group`` and ``state`` ``""``, ``uptime`` and a counter 0, a bus that is not a map
    left out); an optional field of the wrong type is left out."""
    node, session, seq, interval = (content.get(k) for k in ("node", "session", "seq", "interval"))
    if not (isinstance(node, str) and isinstance(session, str) and type(seq) is int):
        return None
    interval = _number(interval)
    if interval is None or interval <= 0:
        return None
    group, state, buses = content.get("group"), content.get("state"), content.get("buses")
    uptime = _number(content.get("uptime"))
    beat: Heartbeat = {
        "seq": seq,
        "node": node,
        "group": group if isinstance(group, str) else "",
        "session": session,
        "uptime": uptime if uptime is not None else 0.0,
        "interval": interval,
        "state": state if isinstance(state, str) else "",
        "buses": {},
    }
    if isinstance(buses, dict):
        for name, value in buses.items():
            bus = _bus(value)
            if bus is not None:
                beat["buses"][str(name)] = bus
    if type(rejected := content.get("rejected")) is int:
        beat["rejected"] = rejected
    subscriptions = content.get("subscriptions")
    if isinstance(subscriptions, dict) and "in_force" in subscriptions:
        beat["subscriptions"] = {
            "in_force": _count(subscriptions.get("in_force")),
            "over_cap": _count(subscriptions.get("over_cap")),
            "refused": _count(subscriptions.get("refused")),
        }
    helm = content.get("helm")
    if isinstance(helm, dict):
        beat["helm"] = {str(name): h for name, value in helm.items() if (h := _helm(value))}
    if content.get("kind") == "forwarder":
        beat["kind"] = "forwarder"
    return beat


def _helm(value: object) -> HelmBeat | None:
    """One bus's helm as a peer sent it; ``None`` when it is not a map."""
    if not isinstance(value, dict):
        return None
    holder, session, since = value.get("holder"), value.get("session"), _number(value.get("since"))
    reason, active = value.get("reason"), value.get("failsafe_active")
    return {
        "holder": holder if isinstance(holder, str) and holder else None,
        "session": session if isinstance(session, str) else None,
        "since": since,
        "lease_ms": _count(value.get("lease_ms")),
        "lease_left_ms": _count(value.get("lease_left_ms")),
        "failsafe_active": active is True,
        "reason": reason if isinstance(reason, str) else "",
        "failsafe_writes": _count(value.get("failsafe_writes")),
        "failsafe_failures": _count(value.get("failsafe_failures")),
    }
