"""Hosts: which computer runs each daemon, and where others connect to what it binds.

Every node and forwarder runs on a host (``host = "main"``, a ``[hosts.main]`` table).
What a daemon binds is for the members of one group: a node's sockets for its group, a
forwarder's (outer side) for its outer group. They connect to the host's address for that
group (``addresses[group]``, else ``address``), never to the bind string:

==========================  =========================================  ===================
bind                        on a declared host, peers connect to        without ``[hosts]``
==========================  =========================================  ===================
``*``, ``0.0.0.0``          the host's address for the group            127.0.0.1
an address                  that address, which must be the host's      that address
                            address for the group
an interface (``eth0``)     the host's address for the group            that name
``ipc://``, ``inproc://``   the same path (the same computer only)      the same path
==========================  =========================================  ===================

A file without ``[hosts]`` is one computer, the implicit host :data:`IMPLICIT_HOST`: every
file written before hosts existed loads as it did, a wildcard bind is reached on loopback,
any other bind by its own string (a host name that resolves where it is bound and where
peers connect; an interface name works only with hosts), and endpoints collide across the
whole file. Ports collide only on one host
(:func:`rovbus.config.checks.check_endpoints`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from rovbus.config.endpoints import Endpoint
from rovbus.config.models import ForwarderConfig, HostConfig, NodeConfig
from rovbus.config.problems import format_key_path, problem
from rovbus.config.system import SystemConfig
from rovbus.errors import ConfigError

__all__ = [
    "IMPLICIT_HOST",
    "LOOPBACK",
    "Bind",
    "Placement",
    "Table",
    "binds",
    "file_error",
    "host_names",
    "host_of",
    "known_host",
    "placement_problem",
    "reached_at",
    "require_placement",
    "this_host",
]

#: the one host of a file that declares none
IMPLICIT_HOST = "local"
#: where a wildcard bind is reached when the whole file is one computer
LOOPBACK = "127.0.0.1"

Table = Literal["nodes", "forwarders"]


@dataclass(frozen=True, slots=True)
class Bind:
    """One socket a daemon binds: where, on which host, and for the members of which group."""

    loc: tuple[str | int, ...]  # its key path: ("nodes", "propulsion", "endpoints", "pub")
    endpoint: Endpoint
    host: str
    group: str

    @property
    def owner(self) -> str:
        """``nodes.propulsion``: the daemon that binds it."""
        return format_key_path(self.loc[:2])

    @property
    def channel(self) -> str:
        return str(self.loc[-1])


def host_names(system: SystemConfig) -> list[str]:
    """The hosts of the file, in file order; ``[IMPLICIT_HOST]`` when it declares none."""
    return list(system.hosts) or [IMPLICIT_HOST]


def known_host(system: SystemConfig, name: str) -> str:
    """``name``, a host of the file; ConfigError naming the known hosts otherwise."""
    if name not in host_names(system):
        known = ", ".join(host_names(system))
        raise file_error(system, f"hosts.{name}: no such host; known hosts: {known}")
    return name


def host_of(system: SystemConfig, entry: NodeConfig | ForwarderConfig) -> str:
    """The host ``entry`` runs on (the implicit host when the file declares none)."""
    return entry.host if system.hosts and entry.host else IMPLICIT_HOST


def placement_problem(
    system: SystemConfig, table: Table, entry: NodeConfig | ForwarderConfig
) -> str | None:
    """What is wrong with the host ``entry`` (of ``table``) names, or None."""
    if (entry.host is None and not system.hosts) or entry.host in system.hosts:
        return None
    loc: list[str | int] = [table, entry.name, "host"]
    known = ", ".join(system.hosts)
    if entry.host is None:
        return problem(
            loc,
            f"required key is missing: the file declares hosts ({known}), so every node "
            "and forwarder names the one it runs on",
        )
    if not system.hosts:
        return problem(
            loc,
            f'unknown host "{entry.host}"; the file declares no hosts (add [hosts.{entry.host}])',
        )
    return problem(loc, f'unknown host "{entry.host}"; known hosts: {known}')


def binds(system: SystemConfig, host: str | None = None) -> Iterator[Bind]:
    """Every socket the daemons of the file bind (of ``host`` only, when given), in file
    order: the nodes', then the forwarders'."""
    for name, node in system.nodes.items():
        on = host_of(system, node)
        if host is None or on == host:
            for channel, endpoint in node.endpoints.items():
                yield Bind(("nodes", name, "endpoints", channel), endpoint, on, node.group)
    for name, fwd in system.forwarders.items():
        on = host_of(system, fwd)
        if host is None or on == host:
            for channel, endpoint in fwd.endpoints.items():
                yield Bind(("forwarders", name, "endpoints", channel), endpoint, on, fwd.outer)


def _same_address(a: str, b: str) -> bool:
    def normal(host: str) -> str:
        host = host.lower().strip("[]")
        if host == "localhost":
            return LOOPBACK
        try:
            return str(ipaddress.ip_address(host))
        except ValueError:
            return host

    return normal(a) == normal(b)


def reached_at(system: SystemConfig, bind: Bind) -> Endpoint:
    """Where the members of ``bind.group`` connect to ``bind`` (the table above).

    Raises ConfigError, naming the key path, for a bind that cannot work on its host: an
    address the file does not give the host for that group, or a host with no address
    for the group (or, on a file with hosts, a node or forwarder that names none).
    """
    endpoint = bind.endpoint
    kind = endpoint.bind_kind
    if kind == "path":
        return endpoint
    if not system.hosts:
        return endpoint.at(LOOPBACK) if kind == "wildcard" else endpoint
    table: Table = "nodes" if bind.loc[0] == "nodes" else "forwarders"
    entry = getattr(system, table)[bind.loc[1]]
    misplaced = placement_problem(system, table, entry)
    if misplaced is not None:
        raise file_error(system, misplaced)
    host = system.hosts[bind.host]
    address = host.address_for(bind.group)
    if address is None:
        raise file_error(system, _no_address(host, bind.group))
    if kind == "address" and not _same_address(endpoint.host, address):
        where = format_key_path(bind.loc)
        raise file_error(system, f"{where}: {_not_its_address(host, bind.group, endpoint.host)}")
    return endpoint.at(address)


def _no_address(host: HostConfig, group: str) -> str:
    return problem(
        ["hosts", host.name],
        f"no address by which group {group} reaches this host, where it binds sockets for "
        f"{group}; set hosts.{host.name}.address or hosts.{host.name}.addresses.{group}",
    )


def _not_its_address(host: HostConfig, group: str, bound: str) -> str:
    address = host.address_for(group)
    for other, its in host.addresses.items():
        if _same_address(its, bound):
            return (
                f"{bound} is host {host.name}'s address for group {other}, but group {group} "
                f"reaches it at {address}; bind {address}, an interface, * or 0.0.0.0"
            )
    known = ", ".join(host.all_addresses())
    return (
        f"host {host.name} has no address {bound} (its addresses per the file: {known}); "
        f"bind {address}, an interface, * or 0.0.0.0, or correct hosts.{host.name}"
    )


def file_error(system: SystemConfig, line: str) -> ConfigError:
    """A ConfigError about ``system``'s file (its path, or ``<string>``) with one problem."""
    return ConfigError(str(system.source) if system.source else "<string>", [line])


# -- which host is this? ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Placement:
    """The host this process runs on, and how that was decided (for messages)."""

    host: str | None  # None: cannot tell (no --host, and the hostname matches no host)
    how: str


def this_host(system: SystemConfig, name: str | None, hostname: str | None = None) -> Placement:
    """The host this process runs on: ``name`` (``--host``) if given, which must be a host
    of the file; else the host whose ``hostname`` (default: its table key) is the
    machine's hostname or its first label. ``hostname`` defaults to the machine's."""
    if name is not None:
        return Placement(known_host(system, name), f"--host {name}")
    if not system.hosts:
        return Placement(IMPLICIT_HOST, "the file declares no hosts: one computer")
    machine = hostname if hostname is not None else socket.gethostname()
    short = machine.split(".")[0]
    for key, host in system.hosts.items():
        if (host.hostname or key) in (machine, short):
            return Placement(key, f'hostname "{machine}"')
    return Placement(None, f'hostname "{machine}" is no host\'s in the file')


def require_placement(system: SystemConfig, table: Table, name: str, here: Placement) -> None:
    """ConfigError unless ``table.name`` runs on the host ``here`` (a host that cannot be
    told passes: every daemon runs wherever it is started)."""
    entry = system.node(name) if table == "nodes" else system.forwarder(name)
    assigned = host_of(system, entry)
    if here.host is None or here.host == assigned:
        return
    raise file_error(
        system,
        f"{table}.{name}: runs on host {assigned}, and this is host {here.host} ({here.how}); "
        f"start it on {assigned}, or change {table}.{name}.host",
    )
