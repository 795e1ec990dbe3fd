"""Sending without blocking: ``send_now``, the one way rovbus sends a message it must not
wait for (every publish, every reply, every request a forwarder passes on).

A message goes out whole at once, or not at all: ``False`` when ZeroMQ would block (a
full pipe past the high-water mark, a DEALER with ``IMMEDIATE`` and no peer), and the
caller counts or retries it. Never a future that waits.

- **A plain socket** (publishers: a PUB or XPUB no coroutine waits on) is sent on
  through pyzmq's compiled ``Socket.send`` frame by frame, past the Python-level
  ``send_multipart`` and ``Socket.send`` (type checks, sugar): a third of the cost of a
  7-frame envelope, the per-frame hot path of a node (docs/benchmarks.md). That class is
  ``zmq.backend.Socket``, pyzmq's backend rather than its documented API, which is why
  pyproject.toml bounds pyzmq from above.
- **An asyncio socket** (one a coroutine also receives on) is sent on through its own
  ``send_multipart`` with ``NOBLOCK``: pyzmq completes it at once (as long as no
  coroutine waits in a blocking send on that socket, which rovbus never does on the
  sockets it gives here) and then wakes that socket's waiting receives. A send on a
  plain twin of the same handle (``Socket.shadow``) would skip that, and could take the
  edge-triggered wake-up meant for a receive that waits without a bound.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import zmq
import zmq.asyncio

from rovbus.transport.stats import SocketStats, frames_size

__all__ = ["send_counted", "send_now"]

#: the compiled ``send`` of pyzmq's socket class, under the Python-level ``zmq.Socket.send``
_send: Callable[..., Any] = zmq.backend.Socket.send
_MORE = zmq.SNDMORE | zmq.NOBLOCK


def send_now(sock: zmq.Socket[Any], frames: Sequence[bytes]) -> bool:
    """Send ``frames`` as one message now; ``False`` (nothing sent) when ZeroMQ would block."""
    if isinstance(sock, zmq.asyncio.Socket):
        done: Any = sock.send_multipart(frames, flags=zmq.NOBLOCK)  # resolved already
        error = done.exception()
        if error is None:
            return True
        if isinstance(error, zmq.Again):
            return False
        raise error
    try:
        for frame in frames[:-1]:
            _send(sock, frame, _MORE)
        _send(sock, frames[-1], zmq.NOBLOCK)
    except zmq.Again:
        return False
    return True


def send_counted(sock: zmq.Socket[Any], frames: Sequence[bytes], stats: SocketStats) -> bool:
    """``send_now``, counted in ``stats``: a message and its bytes out, or one dropped."""
    if not send_now(sock, frames):
        stats.dropped += 1
        return False
    stats.messages_out += 1
    stats.bytes_out += frames_size(frames)
    return True
