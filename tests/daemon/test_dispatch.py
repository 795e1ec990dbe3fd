"""The request dispatcher on a real ROUTER: handlers by type, clients side by side, each
client's requests in order, and what does not fit dropped and counted."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import zmq
import zmq.asyncio

from rovbus.daemon.dispatch import Dispatcher, ReplyCache
from rovbus.transport.channel import Channel
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message

log = logging.getLogger(__name__)


@pytest.fixture(autouse=True)
def _no_leaks(no_leaked_sockets: None) -> None:
    """Every dispatcher test fails if it leaves a zmq socket open."""


class Bench:
    """A ROUTER channel served by ``dispatcher`` (no request loop: requests are handed to
    ``submit`` directly, so the test decides what is queued before any worker runs), and
    a DEALER per client."""

    def __init__(self, ctx: zmq.asyncio.Context, dispatcher: Dispatcher) -> None:
        self.ctx = ctx
        self.codec = Codec(username="op")
        self.endpoint = f"inproc://dispatch-{uuid.uuid4().hex[:8]}"
        router = ctx.socket(zmq.ROUTER)
        router.bind(self.endpoint)
        self.channel = Channel("shell", router, self.codec)
        self.dispatcher = dispatcher
        dispatcher.channel = self.channel
        self.dealers: dict[bytes, zmq.asyncio.Socket] = {}

    async def client(self, name: bytes) -> zmq.asyncio.Socket:
        sock = self.ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.ROUTING_ID, name)
        sock.connect(self.endpoint)
        self.dealers[name] = sock
        return sock

    async def submit(self, client: bytes, msg_type: str, n: int) -> Message:
        request = self.codec.message(msg_type, {"n": n}, identities=[client])
        await self.dispatcher.submit(request)
        return request

    async def replies(self, client: bytes, count: int) -> list[Message]:
        sock = self.dealers[client]
        async with asyncio.timeout(10):
            return [self.codec.decode(await sock.recv_multipart()) for _ in range(count)]

    def close(self) -> None:
        for sock in self.dealers.values():
            sock.close(linger=0)
        self.channel.close(linger_ms=0)


@pytest.fixture
async def ctx() -> AsyncIterator[zmq.asyncio.Context]:
    context = zmq.asyncio.Context()
    yield context
    context.term()


def dispatcher(**caps: int) -> Dispatcher:
    return Dispatcher("node t", Codec(username="t"), log, cache=ReplyCache(), **caps)


async def test_what_does_not_fit_is_dropped_and_counted(ctx: zmq.asyncio.Context) -> None:
    gate = asyncio.Event()

    async def held(request: Message) -> dict[str, Any]:
        await gate.wait()
        return {"status": "ok", "n": request.content["n"]}

    d = dispatcher(max_clients=2, depth=2, total=3)
    d.add("n_request", held)
    bench = Bench(ctx, d)
    try:
        for name in (b"a", b"b", b"c"):
            await bench.client(name)
        a1 = await bench.submit(b"a", "n_request", 1)
        a2 = await bench.submit(b"a", "n_request", 2)
        await bench.submit(b"a", "n_request", 3)  # a's queue is full
        b1 = await bench.submit(b"b", "n_request", 1)
        await bench.submit(b"b", "n_request", 2)  # three are queued in all
        await bench.submit(b"c", "n_request", 1)  # two clients have requests in hand
        assert d.stats.snapshot() == {
            "requests": 3,
            "dropped": 3,
            "retries_waited": 0,
            "clients": 2,
        }
        gate.set()
        got_a = await bench.replies(b"a", 2)
        got_b = await bench.replies(b"b", 1)
        assert [r.parent_header["msg_id"] for r in got_a] == [a1.msg_id, a2.msg_id]
        assert [r.content["n"] for r in got_a] == [1, 2]
        assert got_b[0].parent_header["msg_id"] == b1.msg_id
        await d.finish(timeout=10)  # the workers end when their clients' queues are empty
        assert d.stats.clients == 0
        c1 = await bench.submit(b"c", "n_request", 1)  # room again
        (got_c,) = await bench.replies(b"c", 1)
        assert got_c.parent_header["msg_id"] == c1.msg_id
        assert not any(await asyncio.gather(*(s.poll(0) for s in bench.dealers.values())))
    finally:
        bench.close()


async def test_unknown_types_and_bad_arguments_get_error_replies(
    ctx: zmq.asyncio.Context,
) -> None:
    async def fussy(request: Message) -> dict[str, Any]:
        raise ValueError("'n' must be even")

    d = dispatcher()
    d.add("fussy_request", fussy)
    d.add("other_request", fussy)
    bench = Bench(ctx, d)
    try:
        await bench.client(b"a")
        await bench.submit(b"a", "nope_request", 1)
        await bench.submit(b"a", "fussy_request", 1)
        unknown, bad = await bench.replies(b"a", 2)
        assert unknown.msg_type == "nope_reply"
        assert unknown.content["ename"] == "UnknownRequest"
        assert unknown.content["evalue"] == (
            "node t does not answer 'nope_request'; it answers fussy_request, other_request"
        )
        assert bad.msg_type == "fussy_reply"
        assert (bad.content["ename"], bad.content["evalue"]) == ("ValueError", "'n' must be even")
    finally:
        bench.close()


def test_one_handler_a_type() -> None:
    async def handler(request: Message) -> dict[str, Any]:
        return {"status": "ok"}

    d = dispatcher()
    d.add("x_request", handler)
    with pytest.raises(ValueError, match="node t answers x_request already"):
        d.add("x_request", handler)
    with pytest.raises(ValueError, match="ends with _request"):
        d.add("x_reply", handler)
    assert d.known == ("x_request",)
