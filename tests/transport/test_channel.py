"""A channel's replay guard is its own: what it took, it refuses again, whatever other
channels with the same codec receive."""

from __future__ import annotations

import zmq
import zmq.asyncio

from rovbus.transport.channel import Channel, Rejected
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message

KEY = b"channel test key"


def test_the_replay_guard_is_the_receiving_channel_s() -> None:
    sender = Codec(KEY, username="op")
    receiver = Codec(KEY, username="node", replay_window=2)
    ctx = zmq.asyncio.Context()
    requests = Channel("requests", ctx.socket(zmq.ROUTER), receiver)
    cache = Channel("cache", ctx.socket(zmq.SUB), receiver)
    # channels that verify with one key share a guard when told to (a node's shell,
    # control and stdin)
    shell = Channel("shell", ctx.socket(zmq.ROUTER), receiver, requests.replay_guard)
    try:
        captured = sender.encode(sender.message("can_send_request", {"n": 0}))
        assert isinstance(requests.decode(list(captured)), Message)
        # a flood on another channel of the same codec leaves what this one took alone
        for n in range(1, 6):
            assert isinstance(cache.decode(sender.encode(sender.message("t", {"n": n}))), Message)
        again = requests.decode(list(captured))
        assert isinstance(again, Rejected)
        assert str(again.error) == "replayed message (signature already seen)"
        assert requests.stats.rejected == 1
        # each receiver keeps its own: the other channel takes it once
        assert isinstance(cache.decode(list(captured)), Message)
        # what one of those took, the other refuses
        assert isinstance(shell.decode(list(captured)), Rejected)
    finally:
        for channel in (requests, cache, shell):
            channel.close(linger_ms=0)
        ctx.term()
