"""Free TCP ports on this machine's loopback, for the tools/ scripts and the test suite.

A port the kernel hands out for ``bind(("127.0.0.1", 0))`` and that is closed again is
free for anyone: the next such call may return it again (about 1 in 400 for two calls
of 6 ports each, measured), and so may any outgoing connection, which takes its local
port from the same ephemeral range. A system file written from two such calls then names
one port twice, or a daemon finds its port taken when it starts. So ports are drawn at
random from below the ephemeral range, where no outgoing connection takes one, checked
free with a bind, and never handed out twice by one process.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

#: The lowest port drawn from: above the well-known and most registered service ports.
LOWEST = 10_000
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux; IANA's 49152 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49_152


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """``count`` TCP ports free on 127.0.0.1 now, none handed out before by this process
    and none an outgoing connection can take meanwhile (module doc)."""
    ceiling = _ephemeral_low()
    if ceiling - LOWEST < 1_000:
        raise RuntimeError(
            f"the ephemeral port range starts at {ceiling}: too low to draw ports beneath it"
        )
    ports: list[int] = []
    for _ in range(100 * count + 1_000):
        port = random.randrange(LOWEST, ceiling)
        if port not in _handed_out and _is_free(port):
            _handed_out.add(port)
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError(f"found only {len(ports)} of {count} free ports below {ceiling}")
