"""What a forwarder says about itself, built from what it holds: its heartbeat on
``<name>/hb``, its ``node_info`` and ``stats`` replies (the shapes in
rovbus/wire/contents.py). Pure: the caller reads the clock and the counters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rovbus import __version__
from rovbus.config import ForwarderConfig
from rovbus.forwarder.pubpath import ProxyStats
from rovbus.forwarder.topology import Topology
from rovbus.wire.contents import ForwarderInfo, ForwarderStats, Heartbeat, SubscriptionsBeat

__all__ = ["forwarder_info", "forwarder_stats", "heartbeat", "last_heartbeat"]


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


def forwarder_info(
    *,
    config: ForwarderConfig,
    topology: Topology,
    session: str,
    uptime: float,
    state: str,
    signed: bool,
    curve: bool,
    request_timeout: float,
    serializer: str,
    counters: ForwarderStats,
) -> ForwarderInfo:
    """A forwarder's ``node_info``: who it is, its groups, the nodes and forwarders behind
    it, where it listens and connects, and its ``stats`` as ``counters``."""
    return {
        "node": config.name,
        "forwarder": config.name,
        "kind": "forwarder",
        "version": __version__,
        "session": session,
        "uptime": round(uptime, 3),
        "state": state,
        "inner": config.inner,
        "outer": config.outer,
        "group": config.outer,
        "nodes": [
            {"name": t.node, "group": t.group, "via": t.via, "hops": t.hops}
            for t in topology.targets.values()
        ],
        "forwarders": list(topology.inner_forwarders),
        "endpoints": {name: str(ep) for name, ep in config.endpoints.items()},
        "inner_sources": [s.endpoint for s in topology.sources],
        "signed": signed,
        "curve": curve,
        "request_timeout": request_timeout,
        "serializer": serializer,
        "counters": counters,
    }


def forwarder_stats(
    *,
    name: str,
    uptime: float,
    proxy: ProxyStats,
    paused: bool,
    running: bool,
    prefixes: Iterable[bytes],
    lvc: dict[str, Any],
    requests: dict[str, Any],
    control: dict[str, Any],
    guard: dict[str, Any],
    refused: int,
    refused_addresses: dict[str, float],
    dispatch: dict[str, dict[str, int]],
    curve: dict[str, Any] | None,
) -> ForwarderStats:
    """A forwarder's ``stats``: its pub path (with the ``prefixes`` subscribed outside), its
    last-value cache (``lvc``: its counters and ``topics``), requests routed, the control
    channel, the subscription caps (``guard``) and refused peers, control requests taken
    and, with CURVE, handshakes."""
    result: ForwarderStats = {
        "forwarder": name,
        "uptime": round(uptime, 3),
        "pub": {
            **proxy.as_dict(),
            "subscriptions": lvc.get("subscriptions", 0),
            "prefixes": sorted(p.decode("utf-8", "replace") for p in prefixes),
            "paused": paused,
            "running": running,
        },
        "lvc": lvc,
        "requests": requests,
        "control": control,
        "subscriptions": {**guard, "refused": refused, "refused_addresses": refused_addresses},
        "dispatch": dispatch,
    }
    if curve is not None:
        result["curve"] = curve
    return result
