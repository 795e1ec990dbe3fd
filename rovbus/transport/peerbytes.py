"""Which peer has sent this process the most on one TCP port (Linux).

A forwarder's outer XPUB lives in libzmq's proxy, which does not say which subscriber
sent a subscription; the kernel does count the bytes each TCP connection received
(``TCP_INFO``'s ``tcpi_bytes_received``, Linux 4.1 and later), and what a subscriber
sends a publisher is its subscriptions. libzmq does not hand out its connections' file
descriptors, so they are found among this process's open files, duplicated only for the
time of one ``getsockopt``.
"""

from __future__ import annotations

import os
import socket
import sys
from collections import Counter

__all__ = ["busiest_peer"]

#: where ``tcpi_bytes_received`` (a u64) sits in ``struct tcp_info`` (linux/tcp.h)
_BYTES_RECEIVED = slice(128, 136)


def _received(fd: int, port: int) -> tuple[str, int] | None:
    """``(peer address, bytes received)`` if ``fd`` is a TCP connection to local ``port``."""
    with socket.socket(fileno=os.dup(fd)) as sock:
        if sock.type != socket.SOCK_STREAM or sock.family not in (socket.AF_INET, socket.AF_INET6):
            return None
        if sock.getsockname()[1] != port:
            return None
        peer = str(sock.getpeername()[0]).removeprefix("::ffff:")  # OSError: a listener
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    if len(info) < _BYTES_RECEIVED.stop:
        return None
    return peer, int.from_bytes(info[_BYTES_RECEIVED], sys.byteorder)


def busiest_peer(port: int) -> tuple[str, int] | None:
    """The peer address whose connections to local TCP ``port`` sent this process the most
    bytes, with that count; None when there are none or the kernel does not say."""
    totals: Counter[str] = Counter()
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return None
    for name in fds:
        try:
            if not os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                continue
            found = _received(int(name), port)
        except (OSError, ValueError):  # closed meanwhile, not TCP, not connected
            continue
        if found is not None:
            totals[found[0]] += found[1]
    top = totals.most_common(1)
    return top[0] if top else None
