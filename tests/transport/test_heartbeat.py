"""The hb echo: a ROUTER applying REP's rule. Pings come back unchanged; what a REP would
discard is counted and dropped, and the echo goes on."""

from __future__ import annotations

import asyncio

import pytest
import zmq
import zmq.asyncio

from rovbus.transport import SocketStats, echo_forever
from rovbus.transport.heartbeat import is_ping

ID = b"\x00k\x8bEg"  # a routing id as libzmq makes them


@pytest.mark.parametrize(
    ("frames", "ping"),
    [
        ([ID, b"", b"ping"], True),
        ([ID, b"", b""], True),  # an empty body is a body
        ([ID, b"", b"a", b"b"], True),
        ([ID, b"hop", b"", b"x"], True),  # more routing frames before the delimiter
        ([ID, b"x"], False),  # no delimiter: the one-frame DEALER message
        ([ID, b""], False),  # a delimiter and nothing after it
        ([ID], False),
        ([ID, b"x", b"y"], False),
    ],
)
def test_is_ping_is_reps_rule(frames: list[bytes], ping: bool) -> None:
    assert is_ping(frames) is ping


async def test_pings_are_echoed_and_the_rest_counted() -> None:
    ctx = zmq.asyncio.Context()
    router = ctx.socket(zmq.ROUTER)
    dealer = ctx.socket(zmq.DEALER)
    req = ctx.socket(zmq.REQ)
    stats = SocketStats()
    port = router.bind_to_random_port("tcp://127.0.0.1")
    echo = asyncio.ensure_future(echo_forever(router, stats))
    try:
        for sock in (dealer, req):
            sock.connect(f"tcp://127.0.0.1:{port}")
        bad = [[b"x"], [b""], [b"x", b"y"], [b"x"] * 1000]
        good = [[b"", b"a", b"b"], [b"hop", b"", b"x"], [b"", b""]]
        for frames in [*bad, *good]:
            await dealer.send_multipart(frames)
        # one pipe, in order: the last echo proves every message before it was read
        echoed = [await asyncio.wait_for(dealer.recv_multipart(), 5) for _ in good]
        assert echoed == good
        assert (stats.messages_in, stats.rejected, stats.messages_out) == (7, 4, 3)
        await req.send(b"ping")  # jupyter_client's heartbeat is a REQ
        assert await asyncio.wait_for(req.recv(), 5) == b"ping"
        assert not echo.done()
    finally:
        echo.cancel()
        await asyncio.gather(echo, return_exceptions=True)
        for sock in (dealer, req, router):
            sock.close(linger=0)
        ctx.term()
