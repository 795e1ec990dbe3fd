"""A subscription's counters show what publishers sent on its topics that never arrived
(``stats.missed``, ``missed_topics()``), asynchronously and blocking, also after close.

The publisher (tests/helpers/numbered.py) numbers its messages per topic as a node does (header
``seq``) and leaves some numbers out, as if a high-water mark on the way had dropped them.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from rovbus.client import BlockingClient, Client
from rovbus.config import SystemConfig
from tests.helpers.numbered import NumberedSender

GAPPY = [("demo/a", 1), ("demo/a", 2), ("demo/a", 6), ("demo/b", 3), ("demo/b", 5)]


def send_with_gaps(sender: NumberedSender) -> None:
    """``GAPPY`` (demo/a 3, 4, 5 and demo/b 4 left out), then ``demo/end``."""
    for topic, seq in GAPPY:
        sender.send(topic, seq)
    sender.send("demo/end", 1)


async def test_subscription_counts_what_never_arrived(sender: NumberedSender) -> None:
    async with Client.from_endpoints(pub=[sender.endpoint]) as client:
        sub = client.subscribe(["demo/"])
        async with sub:
            for seq in range(1, 100):  # until the subscription reached the publisher
                sender.send("demo/join", seq)
                try:
                    await asyncio.wait_for(sub.recv(), 0.1)
                    break
                except TimeoutError:
                    pass
            send_with_gaps(sender)
            while (await asyncio.wait_for(sub.recv(), 5)).topic != "demo/end":
                pass
            assert sub.stats.missed == 4  # demo/a 3, 4, 5; demo/b 4
            assert sub.missed_topics() == {"demo/a": 3, "demo/b": 1}
            assert sub.stats.rejected == 0
        assert sub.closed
        assert sub.stats.missed == 4  # the counts outlive the sockets
        assert sub.missed_topics() == {"demo/a": 3, "demo/b": 1}


def test_blocking_subscription_counts_what_never_arrived(sender: NumberedSender) -> None:
    with BlockingClient.from_endpoints(pub=[sender.endpoint]) as client:
        with client.subscribe(["demo/"]) as sub:
            for seq in range(1, 100):
                sender.send("demo/join", seq)
                try:
                    sub.recv(timeout=0.1)
                    break
                except TimeoutError:
                    pass
            send_with_gaps(sender)
            while sub.recv(timeout=5).topic != "demo/end":
                pass
            assert sub.stats.missed == 4
            assert sub.missed_topics() == {"demo/a": 3, "demo/b": 1}
        assert sub.stats.missed == 4


async def test_a_nodes_stream_arrives_without_a_miss(node: tuple[SystemConfig, Path]) -> None:
    system, _ = node
    async with Client.from_system(system, "vehicle") as client:
        async with client.subscribe(["alpha/"]) as sub:
            assert await sub.ready(timeout=5) == {"alpha"}
            frames = [f"123#{i:02X}" for i in range(50)]
            assert await client.send_frames("alpha", "can0", frames) == 50
            got = 0
            deadline = time.monotonic() + 5
            while got < 50 and time.monotonic() < deadline:
                msg = await asyncio.wait_for(sub.recv(), 5)
                got += msg.topic == "alpha/can/can0/123"
                assert isinstance(msg.header["seq"], int)  # every published message has one
            assert got == 50
            stats = sub.stats
        assert stats.messages_in >= 50
        assert stats.missed == 0
