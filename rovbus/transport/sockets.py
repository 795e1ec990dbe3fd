"""Creating, binding and connecting ZeroMQ sockets with rovbus's options.

Every socket gets a bounded linger (so closing never hangs on an absent peer), bounded
high-water marks (a slow peer costs drops, never memory), and optionally a maximum
message size (so a hostile peer cannot make us allocate without bound).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import zmq

from rovbus.errors import TransportError


@dataclass(frozen=True, slots=True)
class SocketOptions:
    linger_ms: int = 500
    sndhwm: int = 10_000
    rcvhwm: int = 10_000
    maxmsgsize: int = -1  # bytes per frame; -1: no limit

    def apply(self, sock: zmq.Socket[Any]) -> None:
        sock.setsockopt(zmq.LINGER, self.linger_ms)
        sock.setsockopt(zmq.SNDHWM, self.sndhwm)
        sock.setsockopt(zmq.RCVHWM, self.rcvhwm)
        if self.maxmsgsize >= 0:
            sock.setsockopt(zmq.MAXMSGSIZE, self.maxmsgsize)


DEFAULT_OPTIONS = SocketOptions()


def bind(sock: zmq.Socket[Any], endpoint: str, what: str) -> None:
    """Bind ``sock``; ``TransportError`` names the socket, the endpoint and the cause."""
    try:
        sock.bind(endpoint)
    except zmq.ZMQError as exc:
        hint = " (another process holds the port?)" if exc.errno == zmq.EADDRINUSE else ""
        raise TransportError(f"cannot bind {what} socket to {endpoint}: {exc}{hint}") from None


def connect(sock: zmq.Socket[Any], endpoint: str, what: str) -> None:
    """Connect ``sock``; ``TransportError`` names the socket, the endpoint and the cause."""
    try:
        sock.connect(endpoint)
    except zmq.ZMQError as exc:
        raise TransportError(f"cannot connect {what} socket to {endpoint}: {exc}") from None
