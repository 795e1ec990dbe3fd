"""What lies behind a forwarder, worked out once from the system file.

Behind forwarder F are the nodes of F's inner group and, recursively, everything behind
the forwarders whose outer group is F's inner group (vehicle -> tether gateway -> topside
-> shore): the reach of F's inner group (:func:`rovbus.config.reach.reach_from_forwarder`).
F reaches a node of its inner group directly (the node's ``shell`` and ``control``
ROUTERs, and its ``pub``), and anything deeper through the inner forwarder that leads
there (that forwarder's ``request`` endpoint with ``[node, channel]`` routing frames, and
its outer ``pub``), each at the address of its host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from rovbus.config import ForwarderConfig, SystemConfig
from rovbus.config.reach import NodeRoute, PubSource, reach_from_forwarder
from rovbus.transport.curve import SocketSetup
from rovbus.transport.sockets import connect

__all__ = ["Topology", "connect_sources", "sync_twin", "topology_of"]


@dataclass(frozen=True, slots=True)
class Topology:
    """Forwarder ``forwarder``'s route to each node behind it (``hops``: forwarders
    between it and the node) and the pubs its inner side connects to."""

    forwarder: ForwarderConfig
    targets: Mapping[str, NodeRoute]
    sources: tuple[PubSource, ...]
    inner_forwarders: tuple[str, ...]  # every forwarder behind this one, at any depth

    @property
    def nodes(self) -> list[str]:
        return list(self.targets)

    def cached_topics(self) -> list[str]:
        """Topics of the last-value cache: every node's hb, status and helm, every
        forwarder's hb."""
        topics: list[str] = []
        for node in self.targets:
            topics += [f"{node}/hb", f"{node}/status", f"{node}/helm"]
        topics += [f"{fwd}/hb" for fwd in self.inner_forwarders]
        return topics


def topology_of(system: SystemConfig, name: str) -> Topology:
    """The topology behind forwarder ``name`` (``ConfigError`` if there is none such)."""
    reach = reach_from_forwarder(system, name)
    return Topology(system.forwarder(name), reach.routes, reach.sources, reach.forwarders)


def connect_sources(
    sock: zmq.Socket[Any], sources: Iterable[PubSource], setup: SocketSetup | None, what: str
) -> None:
    """Connect ``sock`` to every source: nodes in plain, then (after ``setup`` applied the
    CURVE client keys) other forwarders' outer sides. libzmq takes a connection's security
    options from the socket when ``connect`` is called, so one socket can do both."""
    ordered = sorted(sources, key=lambda s: s.secure)
    for source in ordered:
        if source.secure and setup is not None:
            setup(sock)
            setup = None
        connect(sock, source.endpoint, what)


def sync_twin(sock: zmq.asyncio.Socket) -> zmq.Socket[Any]:
    """A plain socket on the same handle: its NOBLOCK send raises ``zmq.Again`` at once
    (an asyncio socket's returns a future that holds it)."""
    return zmq.Socket.shadow(sock.underlying)
