"""What a node says about itself, built from what it holds: its heartbeat, its
``node_info`` and ``stats`` replies (the shapes in rovbus/wire/contents.py). Pure: the
caller reads the clock and the counters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rovbus import __version__
from rovbus.can import CanPort
from rovbus.can.stats import PortStats
from rovbus.config.models import BusConfig
from rovbus.wire.contents import (
    BusBeat,
    BusInfo,
    Heartbeat,
    HelmBeat,
    NodeInfo,
    NodeStats,
    SubscriptionsBeat,
)

__all__ = ["bus_beats", "heartbeat", "node_info", "node_stats"]


def bus_beats(buses: Mapping[str, PortStats]) -> dict[str, BusBeat]:
    return {
        name: {
            "state": s.state,
            "rx": s.rx,
            "tx": s.tx,
            "errors": s.errors,
            "tx_enabled": s.tx_enabled,
        }
        for name, s in buses.items()
    }


def heartbeat(
    *,
    seq: int,
    node: str,
    group: str,
    session: str,
    uptime: float,
    interval: float,
    state: str,
    buses: Mapping[str, PortStats],
    rejected: int,
    subscriptions: SubscriptionsBeat,
    helm: dict[str, HelmBeat],
) -> Heartbeat:
    """A node's heartbeat; ``state`` ``ok`` reads ``degraded`` while a bus is not ok;
    ``helm`` for the buses that have one (none: left out)."""
    degraded = any(s.state != "ok" for s in buses.values())
    beat: Heartbeat = {
        "seq": seq,
        "node": node,
        "group": group,
        "session": session,
        "uptime": round(uptime, 3),
        "interval": interval,
        "state": "degraded" if degraded and state == "ok" else state,
        "buses": bus_beats(buses),
        "rejected": rejected,
        "subscriptions": subscriptions,
    }
    if helm:
        beat["helm"] = helm
    return beat


def node_info(
    *,
    node: str,
    group: str,
    session: str,
    uptime: float,
    state: str,
    serializer: str,
    signed: bool,
    endpoints: Mapping[str, object],
    buses: Iterable[tuple[BusConfig, CanPort]],
) -> NodeInfo:
    """A node's ``node_info``: who it is, where it listens, its buses as configured and now."""
    bus_info: list[BusInfo] = [
        {
            "name": bus.name,
            "interface": bus.interface,
            "channel": bus.channel,
            "bitrate": bus.bitrate,
            "fd": bus.fd,
            "state": port.state,
            "tx_enabled": port.tx_enabled,
            "batch": bus.batch.model_dump() if bus.batch else None,
        }
        for bus, port in buses
    ]
    return {
        "node": node,
        "group": group,
        "version": __version__,
        "session": session,
        "uptime": round(uptime, 3),
        "state": state,
        "serializer": serializer,
        "signed": signed,
        "endpoints": {name: str(endpoint) for name, endpoint in endpoints.items()},
        "buses": bus_info,
    }


def node_stats(
    *,
    node: str,
    uptime: float,
    buses: Mapping[str, PortStats],
    sockets: dict[str, dict[str, Any]],
    subscriptions: dict[str, Any],
    dispatch: dict[str, dict[str, int]],
) -> NodeStats:
    """A node's ``stats``: counters per bus, per socket, of subscriptions and requests."""
    return {
        "node": node,
        "uptime": round(uptime, 3),
        "buses": {name: s.as_dict() for name, s in buses.items()},
        "sockets": sockets,
        "subscriptions": subscriptions,
        "dispatch": dispatch,
    }
