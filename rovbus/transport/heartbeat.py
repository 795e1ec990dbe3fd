"""The hb channel: a ROUTER that echoes each ping raw and unsigned, as Jupyter's REP does.

Jupyter's protocol names a REP socket; ipykernel binds a ROUTER that echoes everything.
rovbus binds a ROUTER and applies REP's rule itself: a ping is the routing frames, an
empty delimiter frame and at least one frame of body, and its echo is the ping unchanged,
so a REQ (jupyter_client's heartbeat) or a DEALER that sends the delimiter gets back what
it sent, as from a REP. Anything else (``b"x"`` from a DEALER, a delimiter alone) is what
a REP discards inside ``recv``, where nobody can count it (and pyzmq's receive then
raises ``zmq.Again``: transport/intake.py): here it is counted (``rejected``), logged at a
limited rate, and the echo goes on.

The echo runs on the daemon's event loop, so a reply proves the loop is alive, not just
that a thread is.
"""

from __future__ import annotations

import logging

import zmq
import zmq.asyncio

from rovbus.transport.intake import Intake
from rovbus.transport.sendnow import send_counted
from rovbus.transport.stats import SocketStats, frames_size

__all__ = ["echo_forever", "is_ping"]


def is_ping(frames: list[bytes]) -> bool:
    """REP's rule for what a ROUTER received: the routing id, any more routing frames, an
    empty delimiter, then a body of at least one frame."""
    try:
        return frames.index(b"", 1) < len(frames) - 1
    except ValueError:
        return False


async def echo_forever(
    socket: zmq.asyncio.Socket, stats: SocketStats, logger: logging.Logger | None = None
) -> None:
    """Echo every ping on a ROUTER socket until cancelled; count the rest as rejected."""
    intake = Intake(logger)
    while (frames := await intake.next(socket, stats, "hb")) is not None:
        stats.messages_in += 1
        stats.bytes_in += frames_size(frames)
        if not is_ping(frames):
            intake.dropped(stats, "hb", "a ping without the empty delimiter frame")
            continue
        send_counted(socket, frames, stats)
