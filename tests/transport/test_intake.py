"""``Intake``: a message a socket discards after saying it was readable is counted, and
the wait goes on (a REP given a message without the empty delimiter frame does that)."""

from __future__ import annotations

import asyncio

import zmq
import zmq.asyncio

from rovbus.transport import Intake, SocketStats
from tests.helpers.waiting import eventually


async def test_a_message_the_socket_discards_is_counted_and_the_wait_goes_on() -> None:
    ctx = zmq.asyncio.Context()
    rep = ctx.socket(zmq.REP)
    dealer = ctx.socket(zmq.DEALER)
    try:
        port = rep.bind_to_random_port("tcp://127.0.0.1")
        dealer.connect(f"tcp://127.0.0.1:{port}")
        stats = SocketStats()
        waiting = asyncio.ensure_future(Intake().next(rep, stats, "rep"))
        # no delimiter: libzmq's REP drops it inside recv, and pyzmq's receive raises Again
        await dealer.send(b"x")
        await eventually(lambda: stats.rejected == 1 or waiting.done(), what="the discard")
        assert not waiting.done(), waiting  # still waiting, not ended by what the peer sent
        await dealer.send_multipart([b"", b"ping"])
        assert await asyncio.wait_for(waiting, 5) == [b"ping"]
        assert stats.rejected == 1
    finally:
        dealer.close(linger=0)
        rep.close(linger=0)
        ctx.term()


async def test_a_stopped_intake_returns_none_and_leaves_the_message_queued() -> None:
    ctx = zmq.asyncio.Context()
    pull = ctx.socket(zmq.PULL)
    push = ctx.socket(zmq.PUSH)
    try:
        pull.bind("inproc://intake")
        push.connect("inproc://intake")
        intake = Intake()
        stats = SocketStats()
        waiting = asyncio.ensure_future(intake.next(pull, stats, "pull"))
        await asyncio.sleep(0)
        intake.stop()
        assert await asyncio.wait_for(waiting, 5) is None
        await push.send(b"kept")
        assert await Intake().next(pull, stats, "pull") == [b"kept"]
        assert stats.rejected == 0
    finally:
        push.close(linger=0)
        pull.close(linger=0)
        ctx.term()
