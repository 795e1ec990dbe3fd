"""The hb channel: a REP socket that echoes whatever it receives, unsigned, as Jupyter does.

The echo runs on the daemon's event loop, so a reply proves the loop is alive, not just
that a thread is.
"""

from __future__ import annotations

import zmq
import zmq.asyncio

from rovbus.transport.stats import SocketStats


async def echo_forever(socket: zmq.asyncio.Socket, stats: SocketStats) -> None:
    """Echo every request on a REP socket until cancelled."""
    while True:
        frames: list[bytes] = await socket.recv_multipart()
        stats.messages_in += 1
        stats.bytes_in += sum(len(f) for f in frames)
        await socket.send_multipart(frames)
        stats.messages_out += 1
        stats.bytes_out += sum(len(f) for f in frames)
