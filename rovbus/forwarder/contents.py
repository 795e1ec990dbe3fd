"""What a forwarder says about itself on ``<name>/hb``, built from what it holds (the
shape in rovbus/wire/contents.py). Pure: the caller reads the clock and the counters."""

from __future__ import annotations

from typing import Any

from rovbus.wire.contents import Heartbeat, SubscriptionsBeat

__all__ = ["heartbeat", "last_heartbeat"]


def heartbeat(
    *,
    seq: int,
    name: str,
    outer: str,
    inner: str,
    session: str,
    uptime: float,
    interval: float,
    state: str,
    nodes: list[str],
    pub: dict[str, Any],
    requests: dict[str, Any],
    rejected: int,
    subscriptions: SubscriptionsBeat,
) -> Heartbeat:
    """A forwarder's heartbeat: its outer group as ``group``, no buses, the nodes behind."""
    beat = last_heartbeat(
        seq=seq, name=name, outer=outer, session=session, uptime=uptime, interval=interval
    )
    beat["state"] = state
    beat["inner"] = inner
    beat["nodes"] = nodes
    beat["pub"] = pub
    beat["requests"] = requests
    beat["rejected"] = rejected
    beat["subscriptions"] = subscriptions
    return beat


def last_heartbeat(
    *, seq: int, name: str, outer: str, session: str, uptime: float, interval: float
) -> Heartbeat:
    """The heartbeat a forwarder sends as it stops (state ``stopping``), and what every
    heartbeat of a forwarder has."""
    return {
        "seq": seq,
        "node": name,
        "kind": "forwarder",
        "group": outer,
        "session": session,
        "uptime": round(uptime, 3),
        "interval": interval,
        "state": "stopping",
        "buses": {},
    }
