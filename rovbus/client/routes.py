"""Where a client finds each node: the reach of its starting point, or endpoints by hand.

A client is a member of one group (or of every group of one host) of the system file.
:func:`rovbus.config.reach` works out what that reaches: the nodes of its groups directly
(their ``pub``, ``shell`` and ``control`` endpoints, at their hosts' addresses), and every
node behind a forwarder into them through that forwarder (its outer ``pub``, and its
``request`` endpoint with two routing frames, ``[node, channel]``, just before the
delimiter). :class:`Routes` is that plan (or endpoints given on the command line); the
client opens sockets from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rovbus.config.reach import NodeRoute, PubSource, reach_from_group, reach_from_host
from rovbus.errors import ConfigError

if TYPE_CHECKING:
    from rovbus.config import SystemConfig

__all__ = [
    "NodeRoute",
    "PubSource",
    "Routes",
    "default_group",
    "explicit_routes",
    "routes_for_group",
    "routes_for_host",
]

#: the route of a request to a forwarder's endpoint given on the command line
_COMMAND_LINE = "command line"


@dataclass(frozen=True, slots=True)
class Routes:
    """Every pub source and node route a client uses.

    ``fallback_request`` (endpoints given on the command line) takes requests for any node
    not in ``nodes``; ``fallback_routed`` says whether it wants ``[node, channel]`` frames.
    ``start`` says where the client stands (``group "topside"``, ``host main``).
    """

    sources: tuple[PubSource, ...]
    nodes: Mapping[str, NodeRoute] = field(default_factory=dict)
    start: str | None = None
    fallback_request: str | None = None
    fallback_routed: bool = False
    source: str = "<command line>"

    def route(self, node: str) -> NodeRoute:
        """The route to ``node``; ``ConfigError`` naming the reachable nodes otherwise."""
        found = self.nodes.get(node)
        if found is not None:
            return found
        if self.fallback_request is not None:
            path = (_COMMAND_LINE,) if self.fallback_routed else ()
            return NodeRoute(node, "", self.fallback_request, self.fallback_request, path)
        known = ", ".join(sorted(self.nodes)) or "none"
        where = f" from {self.start}" if self.start else ""
        raise ConfigError(
            self.source,
            [
                f"node {node!r} is not reachable{where}; reachable nodes: {known} "
                "(try --group or --host)"
            ],
        )


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


def routes_for_group(system: SystemConfig, group: str | None = None) -> Routes:
    """The routes of a client that is a member of ``group`` (default: :func:`default_group`)."""
    reach = reach_from_group(system, group if group is not None else default_group(system))
    return Routes(reach.sources, reach.routes, reach.start, source=str(system.source or "<string>"))


def routes_for_host(system: SystemConfig, host: str) -> Routes:
    """The routes of a client on ``host``: a member of every group the host is on."""
    reach = reach_from_host(system, host)
    return Routes(reach.sources, reach.routes, reach.start, source=str(system.source or "<string>"))


def explicit_routes(pub: list[str], request: str | None = None, *, routed: bool = False) -> Routes:
    """Routes to endpoints given on the command line: every ``pub`` endpoint is subscribed,
    every request goes to ``request`` (with ``[node, channel]`` frames when ``routed``)."""
    return Routes(tuple(PubSource(ep) for ep in pub), {}, None, request, fallback_routed=routed)
