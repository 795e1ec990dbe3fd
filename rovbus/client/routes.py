"""Where a client finds each node: straight to its sockets, or through a forwarder.

A client that is a member of group G reaches the nodes of G directly (their ``pub``,
``shell`` and ``control`` endpoints) and every node behind a forwarder whose outer group
is G through that forwarder: it subscribes to the forwarder's outer ``pub`` endpoint and
sends requests to its ``request`` endpoint with two routing frames, ``[node, channel]``,
just before the delimiter. Behind a forwarder means its inner group's nodes and,
recursively, the nodes behind forwarders into that inner group.

:class:`Routes` is that plan, worked out once from the system file (or from endpoints
given on the command line); the client opens sockets from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rovbus.errors import ConfigError

if TYPE_CHECKING:
    from rovbus.config import SystemConfig

__all__ = ["NodeRoute", "PubSource", "Routes", "default_group", "routes_for_group"]

CHANNELS = ("shell", "control")


@dataclass(frozen=True, slots=True)
class NodeRoute:
    """How requests reach one node.

    ``via`` is ``None`` for a node of the client's own group (``shell``/``control`` are its
    ROUTER endpoints) or the name of the forwarder that carries the request (then both
    are the forwarder's ``request`` endpoint and the request carries ``[node, channel]``).
    """

    node: str
    group: str
    shell: str
    control: str
    via: str | None = None

    def endpoint(self, channel: str) -> str:
        if channel not in CHANNELS:
            raise ValueError(f"channel must be 'shell' or 'control', got {channel!r}")
        return self.shell if channel == "shell" else self.control

    def identities(self, channel: str) -> tuple[bytes, ...]:
        """The routing frames a request on ``channel`` carries before the delimiter."""
        return () if self.via is None else (self.node.encode(), channel.encode())


@dataclass(frozen=True, slots=True)
class PubSource:
    """One PUB (or XPUB) endpoint and the nodes whose messages come from it.

    ``nodes`` is empty when unknown (an endpoint given on the command line). ``secure``
    marks a forwarder's outer side, where CURVE applies when the system configures it.
    """

    endpoint: str
    nodes: tuple[str, ...] = ()
    via: str | None = None
    secure: bool = False


@dataclass(frozen=True, slots=True)
class Routes:
    """Every pub source and node route a client uses.

    ``fallback_request`` (endpoints given on the command line) takes requests for any node
    not in ``nodes``; ``fallback_routed`` says whether it wants ``[node, channel]`` frames.
    """

    sources: tuple[PubSource, ...]
    nodes: dict[str, NodeRoute] = field(default_factory=dict)
    group: str | None = None
    fallback_request: str | None = None
    fallback_routed: bool = False
    source: str = "<command line>"

    def route(self, node: str) -> NodeRoute:
        """The route to ``node``; ``ConfigError`` naming the reachable nodes otherwise."""
        found = self.nodes.get(node)
        if found is not None:
            return found
        if self.fallback_request is not None:
            via = "command line" if self.fallback_routed else None
            return NodeRoute(node, "", self.fallback_request, self.fallback_request, via)
        known = ", ".join(sorted(self.nodes)) or "none"
        where = f" from group {self.group!r}" if self.group else ""
        raise ConfigError(
            self.source,
            [f"node {node!r} is not reachable{where}; reachable nodes: {known} (try --group)"],
        )

    @property
    def node_names(self) -> list[str]:
        return list(self.nodes)


def default_group(system: SystemConfig) -> str:
    """The group an operator belongs to by default: the first with no nodes of its own that a
    forwarder serves (``topside``), else the first group of the file that has nodes."""
    for name in system.groups:
        if not system.nodes_in(name) and system.forwarders_into(name):
            return name
    for name in system.groups:
        if system.nodes_in(name):
            return name
    if not system.groups:
        raise ConfigError(str(system.source), ["groups: the system file declares no group"])
    return next(iter(system.groups))


def _behind(system: SystemConfig, group: str, seen: set[str]) -> list[str]:
    """Names of the nodes inside ``group`` and behind every forwarder into it."""
    if group in seen:  # the config checks forbid cycles; be safe anyway
        return []
    seen.add(group)
    names = [n.name for n in system.nodes_in(group)]
    for fwd in system.forwarders_into(group):
        names += _behind(system, fwd.inner, seen)
    return names


def routes_for_group(system: SystemConfig, group: str | None = None) -> Routes:
    """The routes of a client that is a member of ``group`` (default: :func:`default_group`)."""
    if group is None:
        group = default_group(system)
    if group not in system.groups:
        known = ", ".join(system.groups) or "none"
        raise ConfigError(
            str(system.source), [f"groups.{group}: no such group; known groups: {known}"]
        )
    sources: list[PubSource] = []
    nodes: dict[str, NodeRoute] = {}
    for node in system.nodes_in(group):
        ep = node.endpoints
        sources.append(PubSource(str(ep.pub), (node.name,)))
        nodes[node.name] = NodeRoute(node.name, group, str(ep.shell), str(ep.control))
    for fwd in system.forwarders_into(group):
        names = _behind(system, fwd.inner, {group})
        request = str(fwd.endpoints.request)
        sources.append(PubSource(str(fwd.endpoints.pub), tuple(names), fwd.name, secure=True))
        for name in names:
            nodes.setdefault(
                name, NodeRoute(name, system.node(name).group, request, request, fwd.name)
            )
    return Routes(tuple(sources), nodes, group, source=str(system.source or "<string>"))


def explicit_routes(pub: list[str], request: str | None = None, *, routed: bool = False) -> Routes:
    """Routes to endpoints given on the command line: every ``pub`` endpoint is subscribed,
    every request goes to ``request`` (with ``[node, channel]`` frames when ``routed``)."""
    return Routes(tuple(PubSource(ep) for ep in pub), {}, None, request, fallback_routed=routed)
