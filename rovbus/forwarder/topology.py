"""What lies behind a forwarder, worked out once from the system file.

Behind forwarder F are the nodes of F's inner group and, recursively, everything behind
the forwarders whose outer group is F's inner group (vehicle -> tether gateway -> topside
-> shore). F reaches a node of its inner group directly (the node's ``shell`` and
``control`` ROUTERs, and its ``pub``), and anything deeper through the inner forwarder
that leads there (that forwarder's ``request`` endpoint with ``[node, channel]`` routing
frames, and its outer ``pub``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from rovbus.config import ForwarderConfig, SystemConfig
from rovbus.transport.curve import SocketSetup
from rovbus.transport.sockets import connect

__all__ = ["PubSource", "Target", "Topology", "connect_sources", "sync_twin", "topology_of"]


@dataclass(frozen=True, slots=True)
class Target:
    """Where requests for one node go from this forwarder.

    ``via`` is ``None`` for a node of the inner group (``shell``/``control`` are its own
    ROUTER endpoints), else the inner forwarder that leads to it (both are that
    forwarder's ``request`` endpoint). ``hops`` counts forwarders between us and the node.
    """

    node: str
    group: str
    shell: str
    control: str
    via: str | None = None
    hops: int = 0

    def endpoint(self, channel: str) -> str:
        return self.shell if channel == "shell" else self.control


@dataclass(frozen=True, slots=True)
class PubSource:
    """A PUB endpoint the inner XSUB connects to; ``secure``: another forwarder's outer side."""

    endpoint: str
    secure: bool


@dataclass(frozen=True, slots=True)
class Topology:
    forwarder: ForwarderConfig
    targets: dict[str, Target]
    sources: tuple[PubSource, ...]
    inner_forwarders: tuple[str, ...]  # every forwarder behind this one, at any depth

    @property
    def nodes(self) -> list[str]:
        return list(self.targets)

    def cached_topics(self) -> list[str]:
        """Topics of the last-value cache: every node's hb and status, every forwarder's hb."""
        topics: list[str] = []
        for node in self.targets:
            topics += [f"{node}/hb", f"{node}/status"]
        topics += [f"{fwd}/hb" for fwd in self.inner_forwarders]
        return topics


def topology_of(system: SystemConfig, name: str) -> Topology:
    """The topology behind forwarder ``name`` (``ConfigError`` if there is none such)."""
    fwd = system.forwarder(name)
    targets: dict[str, Target] = {}
    sources: list[PubSource] = []
    behind: list[str] = []
    for node in system.nodes_in(fwd.inner):
        ep = node.endpoints
        targets[node.name] = Target(
            node.name,
            node.group,
            str(ep.shell.connectable()),
            str(ep.control.connectable()),
        )
        sources.append(PubSource(str(ep.pub.connectable()), secure=False))
    for inner in system.forwarders_into(fwd.inner):
        request = str(inner.endpoints.request.connectable())
        sources.append(PubSource(str(inner.endpoints.pub.connectable()), secure=True))
        deeper = topology_of(system, inner.name)
        behind += [inner.name, *deeper.inner_forwarders]
        for target in deeper.targets.values():
            targets.setdefault(
                target.node,
                Target(target.node, target.group, request, request, inner.name, target.hops + 1),
            )
    return Topology(fwd, targets, tuple(sources), tuple(behind))


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
