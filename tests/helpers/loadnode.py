"""A node daemon fed CAN frames in its own process: the node role of tools/soak.py and
tools/bench_node.py.

python-can's virtual bus links only the buses of one process, so the frames a load tool
sends a node are written in the node's process, by threads beside its event loop:
``serve_node`` runs the daemon with a virtual bus open on each of its buses' channels (the
writers' side), and the tool starts its writers from ``started``. ``frame_putter`` and
``pace`` are the writer.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import can

from rovbus.config import load_system
from rovbus.daemon.process import event_loop_factory
from rovbus.node.daemon import NodeDaemon


def serve_node(
    config: Path,
    name: str,
    started: Callable[[NodeDaemon, dict[str, can.BusABC]], None],
    stopping: Callable[[NodeDaemon], None] = lambda daemon: None,
) -> None:
    """Run node ``name`` of ``config`` on an event loop of this process (uvloop where
    installed) until SIGTERM or ``request_stop``. Once it has started, ``started`` gets it
    and a virtual bus on each of its buses' channels (by bus name), on the loop's thread;
    ``stopping`` gets it when it has stopped serving, before it closes."""

    async def main() -> None:
        daemon = NodeDaemon(load_system(config), name)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, daemon.request_stop)
        await daemon.start()
        buses = {
            b.name: can.Bus(interface="virtual", channel=b.channel) for b in daemon.config.buses
        }
        try:
            started(daemon, buses)
            await daemon.serve()
        finally:
            stopping(daemon)
            await daemon.aclose()
            for bus in buses.values():
                bus.shutdown()

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(main())


def frame_putter(bus: Any) -> Callable[[], None]:
    """One classic 8-byte frame a call, IDs 0x100-0x13F, data = the send time
    (``time.time_ns``, little-endian), put on the receive queues of the other buses of
    ``bus``'s virtual channel as an adapter would deliver it: what ``VirtualBus.send``
    does, with a new ``can.Message`` instead of its deep copy (about 3 µs a frame instead
    of 8, so the writer takes less of the node process's GIL)."""
    counter = itertools.count()
    queues = [q for q in bus.channel if q is not bus.queue]
    channel = bus.channel_id
    message = can.Message
    clock = time.time_ns

    def put_one() -> None:
        now = clock()
        msg = message(
            timestamp=now / 1e9,
            arbitration_id=0x100 + (next(counter) & 0x3F),
            data=now.to_bytes(8, "little"),
            is_extended_id=False,
            channel=channel,
            is_rx=True,
        )
        for q in queues:
            q.put(msg)

    return put_one


def pace(send: Callable[[], None], rate: float | None, seconds: float) -> tuple[int, int, int]:
    """Call ``send`` ``rate * seconds`` times at ``rate`` a second, or (``rate`` None) as
    often as it can for ``seconds``. Returns (calls, first send ns, last send ns)."""
    perf = time.perf_counter
    sleep = time.sleep
    t0_ns = time.time_ns()
    start = perf()
    sent = 0
    if rate is None:
        end = start + seconds
        while perf() < end:
            for _ in range(64):
                send()
            sent += 64
    else:
        total = max(1, round(rate * seconds))
        chunk = max(1, math.ceil(rate / 4000))  # wake up at most every 250 µs
        while sent < total:
            k = min(chunk, total - sent)
            for _ in range(k):
                send()
            sent += k
            ahead = start + sent / rate - perf()
            if ahead > 0:
                sleep(ahead)
    return sent, t0_ns, time.time_ns()
