"""ZeroMQ endpoints as parsed values.

A system file names every socket by a ZeroMQ endpoint string. The same string is where a
daemon binds and where its peers connect, so it is parsed once, here, into an
:class:`Endpoint` that knows its transport, host, port or path.

Accepted forms:

- ``tcp://HOST:PORT``: port 1-65535; HOST an IPv4 address, an IPv6 address in brackets
  (``[::1]``), ``localhost``, ``*`` (every interface, bind only) or a hostname.
- ``ipc:///absolute/path``: a Unix socket path; it must be absolute.
- ``inproc://name``: inside one process (tests).

An endpoint in the system file is where a daemon binds: an address, an interface name,
or a wildcard (``*``, ``0.0.0.0``, ``[::]``), which cannot be connected to. Where peers
connect comes from the daemon's host (:mod:`rovbus.config.hosts`), never from the bind.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

__all__ = [
    "WILDCARD_HOSTS",
    "BindKind",
    "BoundEndpoints",
    "Endpoint",
    "Transport",
    "parse_address",
    "parse_endpoint",
]

Transport = Literal["tcp", "ipc", "inproc"]
BindKind = Literal["wildcard", "address", "name", "path"]

#: hosts that mean "every interface" when binding; they collide with any host on that port
WILDCARD_HOSTS = frozenset({"*", "0.0.0.0", "::", "[::]"})

_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
_TCP = re.compile(r"^(?P<host>\[[^\]]*\]|[^:\[\]]*):(?P<port>[^:]*)$")


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One parsed ZeroMQ endpoint.

    ``host`` and ``port`` are set for ``tcp`` (an IPv6 host keeps its brackets);
    ``path`` holds the ipc path or the inproc name. ``str(endpoint)`` gives back the
    string to hand to ``socket.bind`` or ``socket.connect``.
    """

    transport: Transport
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        return self.url

    @property
    def url(self) -> str:
        """The endpoint as ZeroMQ spells it."""
        if self.transport == "tcp":
            return f"tcp://{self.host}:{self.port}"
        return f"{self.transport}://{self.path}"

    @property
    def bind_kind(self) -> BindKind:
        """How a daemon binding this endpoint picks its address: ``"wildcard"`` (every
        interface), ``"address"`` (one IP address, ``localhost`` included), ``"name"`` (a
        network interface by name, as libzmq binds ``tcp://eth0:7100``, else the address
        a host name resolves to on the binding computer) or ``"path"`` (ipc and inproc)."""
        if self.transport != "tcp":
            return "path"
        if self.host in WILDCARD_HOSTS:
            return "wildcard"
        if self.host.lower() == "localhost" or self.host.startswith("[") or _is_ipv4(self.host):
            return "address"
        return "name"

    def at(self, host: str) -> Endpoint:
        """This tcp endpoint's port at ``host`` (an address as :func:`parse_address`
        returns it): where a peer connects to what was bound here."""
        return Endpoint("tcp", host=host, port=self.port)

    def collision_key(self) -> tuple[str, str, int]:
        """What two endpoints must share to be the same socket address.

        ``localhost`` counts as ``127.0.0.1`` and host names compare case-insensitively.
        Wildcard hosts are normalized to ``*``; whether a wildcard collides with another
        host on the same port is for the caller to decide (see :meth:`collides_with`, and
        :class:`BoundEndpoints` for many at once).
        """
        if self.transport != "tcp":
            return (self.transport, self.path, 0)
        host = self.host.lower()
        if host == "localhost":
            host = "127.0.0.1"
        elif host in WILDCARD_HOSTS:
            host = "*"
        return ("tcp", host, self.port)

    def collides_with(self, other: Endpoint) -> bool:
        """True when binding both would fight over one address.

        Two tcp endpoints collide on the same port when their hosts are equal or either is
        a wildcard; ipc and inproc endpoints collide when their paths are equal.
        """
        mine, theirs = self.collision_key(), other.collision_key()
        if mine[0] != theirs[0] or mine[2] != theirs[2]:
            return False
        if mine[0] == "tcp" and "*" in (mine[1], theirs[1]):
            return True
        return mine[1] == theirs[1]


Owner = TypeVar("Owner")


class BoundEndpoints(Generic[Owner]):
    """Endpoints bound so far, each with its owner, indexed by what a new one could collide
    on: :meth:`first_collision` finds the earliest that :meth:`Endpoint.collides_with` a
    new endpoint in constant time, where comparing with each would take time in their
    number (a check of a whole system file would be quadratic in its nodes).

    One index serves one address space: one host (:func:`rovbus.config.checks.check_endpoints`).
    """

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, str, int], tuple[int, Endpoint, Owner]] = {}
        self._by_port: dict[int, tuple[int, Endpoint, Owner]] = {}  # tcp, any host
        self._count = 0

    def add(self, endpoint: Endpoint, owner: Owner) -> None:
        entry = (self._count, endpoint, owner)
        self._count += 1
        key = endpoint.collision_key()
        self._by_key.setdefault(key, entry)
        if endpoint.transport == "tcp":
            self._by_port.setdefault(endpoint.port, entry)

    def first_collision(self, endpoint: Endpoint) -> tuple[Endpoint, Owner] | None:
        """The first endpoint added that collides with ``endpoint``, and its owner."""
        key = endpoint.collision_key()
        if key[0] != "tcp":
            candidates = [self._by_key.get(key)]
        elif key[1] == "*":  # a wildcard collides with every host on its port
            candidates = [self._by_port.get(key[2])]
        else:  # the same host, or a wildcard, on its port
            candidates = [self._by_key.get(key), self._by_key.get(("tcp", "*", key[2]))]
        found = min((c for c in candidates if c is not None), default=None, key=lambda c: c[0])
        return None if found is None else (found[1], found[2])


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _check_host(host: str) -> None:
    """Raise ValueError unless ``host`` is a usable tcp host."""
    if host in WILDCARD_HOSTS or host == "localhost":
        return
    if host.startswith("["):
        inner = host[1:-1] if host.endswith("]") else ""
        try:
            ipaddress.IPv6Address(inner)
        except ValueError:
            raise ValueError(f"host {host} is not an IPv6 address in brackets") from None
        return
    if not host:
        raise ValueError("the host is empty")
    if re.fullmatch(r"[0-9.]+", host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"host {host} is not a valid IPv4 address") from None
        return
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_HOSTNAME_LABEL.match(label) for label in labels):
        raise ValueError(f'host "{host}" is not an IP address, localhost, * or a hostname')


def parse_endpoint(text: str) -> Endpoint:
    """Parse a ZeroMQ endpoint string; raise ValueError saying what is wrong."""
    if not isinstance(text, str):
        raise TypeError(f"expected an endpoint string, got {type(text).__name__}")
    scheme, sep, rest = text.partition("://")
    if not sep:
        raise ValueError(
            f'"{text}" is not an endpoint; expected tcp://HOST:PORT, ipc:///PATH or inproc://NAME'
        )
    if scheme == "tcp":
        match = _TCP.match(rest)
        if match is None:
            raise ValueError(f'"{text}" is not tcp://HOST:PORT')
        host, port_text = match["host"], match["port"]
        if not port_text.isdigit():
            raise ValueError(f'port "{port_text}" in "{text}" is not a number')
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise ValueError(f'port {port} in "{text}" is out of range 1-65535')
        _check_host(host)
        return Endpoint("tcp", host=host, port=port)
    if scheme == "ipc":
        if not rest.startswith("/"):
            raise ValueError(f'"{text}": an ipc path must be absolute (ipc:///run/rovbus/x)')
        return Endpoint("ipc", path=rest)
    if scheme == "inproc":
        if not rest:
            raise ValueError(f'"{text}": an inproc endpoint needs a name')
        return Endpoint("inproc", path=rest)
    raise ValueError(f'"{text}": unknown transport "{scheme}"; expected tcp, ipc or inproc')


def parse_address(text: str) -> str:
    """An address by which peers reach a computer: an IPv4 address, an IPv6 address (given
    with or without brackets, returned in them, as an endpoint spells it), ``localhost``
    or a DNS name. ValueError for a wildcard or anything else."""
    host = text.strip()
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    if host in WILDCARD_HOSTS:
        raise ValueError(
            f'"{text}" means every interface, which only a bind can use; give the address '
            "others connect to, such as 192.168.2.2"
        )
    try:
        _check_host(host)
    except ValueError as exc:
        raise ValueError(f'"{text}" is not an address: {exc}') from None
    return host
