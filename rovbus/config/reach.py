"""Who reaches whom: from a starting point, the route to every node and the pubs to read.

A starting point is a set of groups a process is a member of: a client's group, every
group of a host (its nodes' groups, and both sides of its forwarders), or a forwarder's
inner group. From there:

- the nodes of those groups are reached directly: requests go to their ``shell`` and
  ``control`` ROUTERs, messages come from their ``pub``;
- a forwarder into one of them (its outer group) carries the rest: requests go to its
  ``request`` endpoint with ``[node, channel]`` routing frames, messages come from its
  outer ``pub``, for every node behind it (its inner group's, and recursively those
  behind the forwarders into that group) that is not reached a shorter way.

Every address is where the members of the endpoint's group connect on its host
(:func:`rovbus.config.hosts.reached_at`), so a wildcard or interface bind is reached by
the host's address. Clients (``rovbus.client.routes``), forwarders
(``rovbus.forwarder.topology``) and connection files (``rovbus.node.connection_file``)
all take their addresses from here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from rovbus.config.endpoints import Endpoint
from rovbus.config.hosts import (
    Bind,
    file_error,
    host_names,
    host_of,
    known_host,
    reached_at,
)
from rovbus.config.models import ForwarderConfig, NodeConfig
from rovbus.config.system import SystemConfig

__all__ = [
    "CHANNELS",
    "NodeRoute",
    "PubSource",
    "Reach",
    "groups_by_host",
    "groups_of_host",
    "node_endpoints",
    "reach_from_forwarder",
    "reach_from_group",
    "reach_from_groups",
    "reach_from_host",
]

#: the channels a request goes to a node on
CHANNELS = ("shell", "control")


@dataclass(frozen=True, slots=True)
class NodeRoute:
    """How requests reach one node.

    ``path`` names the forwarders on the way, the first one the request goes to; empty for
    a node reached directly (``shell``/``control`` are its own ROUTERs). Through a
    forwarder, both are that forwarder's ``request`` endpoint and the request carries
    ``[node, channel]`` before the delimiter.
    """

    node: str
    group: str
    shell: str
    control: str
    path: tuple[str, ...] = ()

    @property
    def via(self) -> str | None:
        """The forwarder a request goes to (None: straight to the node)."""
        return self.path[0] if self.path else None

    @property
    def hops(self) -> int:
        """Forwarders between the starting point and the node."""
        return len(self.path)

    def endpoint(self, channel: str) -> str:
        if channel not in CHANNELS:
            raise ValueError(f"channel must be 'shell' or 'control', got {channel!r}")
        return self.shell if channel == "shell" else self.control

    def identities(self, channel: str) -> tuple[bytes, ...]:
        """The routing frames a request on ``channel`` carries before the delimiter."""
        return () if self.via is None else (self.node.encode(), channel.encode())


@dataclass(frozen=True, slots=True)
class PubSource:
    """One PUB (or a forwarder's XPUB) to connect to, and whose messages come from it.

    ``via`` names the forwarder whose outer side it is (None: a node's own pub). ``nodes``
    are the nodes whose messages come from it (empty when unknown: an endpoint given on
    the command line); ``forwarders`` the forwarders whose own heartbeats do (``via`` and
    every forwarder behind it).
    """

    endpoint: str
    nodes: tuple[str, ...] = ()
    via: str | None = None
    forwarders: tuple[str, ...] = ()

    @property
    def secure(self) -> bool:
        """A forwarder's outer side, where CURVE applies when the system configures it."""
        return self.via is not None


@dataclass(frozen=True, slots=True)
class Reach:
    """What one starting point reaches: a route per node, the pubs to connect to."""

    start: str  # for messages: 'group "topside"', 'host main', 'forwarder tether'
    groups: tuple[str, ...]  # the groups it is a member of
    routes: Mapping[str, NodeRoute] = field(default_factory=dict)
    sources: tuple[PubSource, ...] = ()

    @property
    def forwarders(self) -> tuple[str, ...]:
        """Every forwarder whose heartbeats come from a source, in order."""
        return tuple(dict.fromkeys(f for s in self.sources for f in s.forwarders))


def _reached(system: SystemConfig, entry: NodeConfig | ForwarderConfig, channel: str) -> Endpoint:
    """Where the members of the group ``entry`` binds for connect to its ``channel``."""
    table = "nodes" if isinstance(entry, NodeConfig) else "forwarders"
    group = entry.group if isinstance(entry, NodeConfig) else entry.outer
    endpoint: Endpoint = getattr(entry.endpoints, channel)
    bind = Bind((table, entry.name, "endpoints", channel), endpoint, host_of(system, entry), group)
    return reached_at(system, bind)


def _at(system: SystemConfig, entry: NodeConfig | ForwarderConfig, channel: str) -> str:
    return str(_reached(system, entry, channel))


def node_endpoints(system: SystemConfig, name: str) -> dict[str, Endpoint]:
    """Every endpoint of node ``name`` as the members of its group connect to it."""
    node = system.node(name)
    return {channel: _reached(system, node, channel) for channel, _ in node.endpoints.items()}


def _reach(system: SystemConfig, start: str, groups: list[str]) -> Reach:
    """Direct to the nodes of ``groups``; through each forwarder into them, everything
    behind it. A forwarder whose inner group is one of ``groups`` adds nothing (its side is
    reached directly, and what lies behind it through the forwarders into that group), so
    each node has one route, with its fewest hops."""
    members = set(groups)
    routes: dict[str, NodeRoute] = {}
    sources: list[PubSource] = []
    for group in groups:
        for node in system.nodes_in(group):
            shell, control = _at(system, node, "shell"), _at(system, node, "control")
            routes[node.name] = NodeRoute(node.name, group, shell, control)
            sources.append(PubSource(_at(system, node, "pub"), (node.name,)))
    for group in groups:
        for fwd in system.forwarders_into(group):
            if fwd.inner in members:
                continue
            request = _at(system, fwd, "request")
            nodes: list[str] = []
            forwarders: list[str] = []
            level: list[tuple[ForwarderConfig, tuple[str, ...]]] = [(fwd, (fwd.name,))]
            while level:  # breadth first behind fwd
                following: list[tuple[ForwarderConfig, tuple[str, ...]]] = []
                for inner, path in level:
                    if inner.inner in members or inner.name in forwarders:
                        continue  # reached another way (or a cycle, which checks refuse)
                    forwarders.append(inner.name)
                    for node in system.nodes_in(inner.inner):
                        routes[node.name] = NodeRoute(node.name, node.group, request, request, path)
                        nodes.append(node.name)
                    following += [(f, (*path, f.name)) for f in system.forwarders_into(inner.inner)]
                level = following
            sources.append(
                PubSource(_at(system, fwd, "pub"), tuple(nodes), fwd.name, tuple(forwarders))
            )
    return Reach(start, tuple(groups), routes, tuple(sources))


def reach_from_group(system: SystemConfig, group: str) -> Reach:
    """What a member of ``group`` reaches (ConfigError naming the groups if none such)."""
    return reach_from_groups(system, [group], f'group "{group}"')


def groups_by_host(system: SystemConfig) -> dict[str, list[str]]:
    """The groups each host is on, in file order: its nodes' groups, both sides of its
    forwarders (a forwarder's computer is on the inner network and the outer one), and
    the groups it has an address for (an operator's computer that runs no daemon)."""
    on: dict[str, set[str]] = {name: set(host.addresses) for name, host in system.hosts.items()}
    for node in system.nodes.values():
        on.setdefault(host_of(system, node), set()).add(node.group)
    for fwd in system.forwarders.values():
        on.setdefault(host_of(system, fwd), set()).update((fwd.inner, fwd.outer))
    return {
        host: [g for g in system.groups if g in on.get(host, set())] for host in host_names(system)
    }


def groups_of_host(system: SystemConfig, host: str) -> list[str]:
    """The groups ``host`` is on (:func:`groups_by_host`)."""
    return groups_by_host(system).get(host, [])


def reach_from_groups(system: SystemConfig, groups: Sequence[str], start: str) -> Reach:
    """What a member of every group of ``groups`` reaches (``start`` names it in messages)."""
    unknown = [g for g in groups if g not in system.groups]
    if unknown:
        known = ", ".join(system.groups) or "none"
        raise file_error(system, f"groups.{unknown[0]}: no such group; known groups: {known}")
    return _reach(system, start, list(groups))


def reach_from_host(system: SystemConfig, host: str) -> Reach:
    """What a process on ``host`` reaches: a member of every group the host is on."""
    return _reach(system, f"host {known_host(system, host)}", groups_of_host(system, host))


def reach_from_forwarder(system: SystemConfig, name: str) -> Reach:
    """What forwarder ``name`` reaches: its inner group and everything behind it."""
    fwd = system.forwarder(name)
    return _reach(system, f"forwarder {name}", [fwd.inner])
