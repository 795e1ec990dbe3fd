"""The last-value cache in the test process: what a late joiner is replayed, in which order."""

from __future__ import annotations

import asyncio

import zmq.asyncio

from rovbus.forwarder.lvc import LastValueCache
from rovbus.transport.subscriber import Subscriber
from rovbus.wire.codec import Codec
from rovbus.wire.serializers import Serializer


async def test_a_late_joiner_counts_no_loss_in_a_replayed_status_topic() -> None:
    """``status`` and ``bus_status`` share ``<node>/status`` and its seq numbers. The cache
    keeps the latest of each (here bus_status seq 1, status seq 5); replayed oldest first,
    a new subscriber would take 2-4 as lost."""
    ctx = zmq.asyncio.Context()
    node = Codec(username="alpha")
    lvc = LastValueCache(ctx, "tether", Codec(), Serializer.MSGPACK)
    sub = Subscriber(ctx, [lvc.endpoint], Codec(), ["alpha/"])
    try:
        for seq, (msg_type, content) in enumerate(
            [
                ("bus_status", {"bus": "can0", "state": "ok", "error": None}),
                *[("status", {"execution_state": state}) for state in ("busy", "idle") * 2],
            ],
            start=1,
        ):
            message = node.message(msg_type, content, identities=(b"alpha/status",), seq=seq)
            lvc._keep(message, node.encode(message))
        async with asyncio.timeout(5):
            assert await lvc.xpub.recv_multipart() == [b"\x01alpha/"]  # the subscription is in
            assert lvc.replay(b"alpha/") == 2
            first, second = await sub.recv(), await sub.recv()
        assert (first.msg_type, first.header["seq"]) == ("status", 5)
        assert (second.msg_type, second.header["seq"]) == ("bus_status", 1)
        assert sub.stats.missed == 0
    finally:
        sub.close()
        lvc.close()
        ctx.destroy(linger=0)
