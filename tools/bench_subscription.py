#!/usr/bin/env python3
"""How fast a client's Subscription takes messages, against a bare zmq.asyncio SUB.

One PUB (a plain socket on a thread of its own) sends N already-encoded 7-frame
envelopes over loopback into a subscriber with no high-water mark; once all are sent, the
receiver drains them and is timed until it has them all (or nothing came for a second).
Run twice, in one process:

- reference: ``await sock.recv_multipart()`` in a loop on a zmq.asyncio SUB, no decoding;
- rovbus: ``Subscription.next_received()`` with one socket, or two (the second as if
  through a forwarder, publishing nothing: the wait on several sockets), which also
  decodes and checks sequence numbers.

Prints messages/s of each and the ratio rovbus/reference (docs/benchmarks.md).

    .venv/bin/python tools/bench_subscription.py [--messages 200000] [--sources 2]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from typing import Any

import zmq
import zmq.asyncio

from rovbus.client import Routes, Subscription
from rovbus.config.reach import PubSource
from rovbus.wire.codec import Codec


def _frames(codec: Codec, n: int) -> list[list[bytes]]:
    content = {"bus": "can0", "id": 0x123, "data": b"\x01\x02\x03\x04\x05\x06\x07\x08"}
    return [
        codec.encode_new("can_frame", content, (b"bench/can/can0/123",), codec.serializer, i + 1)
        for i in range(n)
    ]


SENT = threading.Event()


def _publish(ctx: zmq.Context[Any], endpoint: str, messages: list[list[bytes]]) -> None:
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.SNDHWM, 0)
    pub.bind(endpoint)
    time.sleep(0.5)  # the subscriber connects and subscribes (a benchmark, not a test)
    for frames in messages:
        pub.send_multipart(frames)
    time.sleep(0.5)  # libzmq's I/O thread moves the last ones into the subscriber's pipe
    SENT.set()
    time.sleep(0.5)
    pub.close(linger=0)


async def _drain(recv: Any, n: int) -> tuple[int, float]:
    """Receive until ``n`` messages or a second of silence; (count, seconds taken)."""
    await asyncio.to_thread(SENT.wait)
    got = 0
    start = time.perf_counter()
    try:
        while got < n:
            await asyncio.wait_for(recv(), 1)
            got += 1
    except TimeoutError:
        pass
    return got, time.perf_counter() - start


async def _reference(endpoint: str, n: int) -> tuple[int, float]:
    ctx = zmq.asyncio.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoint)
    result = await _drain(sub.recv_multipart, n)
    sub.close(linger=0)
    ctx.term()
    return result


async def _rovbus(endpoints: list[str], n: int) -> tuple[int, float]:
    ctx = zmq.asyncio.Context()
    sources = tuple(PubSource(ep, via=f"f{i}" if i else None) for i, ep in enumerate(endpoints))
    routes = Routes(sources, {}, None, None)
    sub = Subscription(ctx, routes, Codec(), [""])
    for s in sub.subscribers:
        s.channel.socket.setsockopt(zmq.RCVHWM, 0)
    result = await _drain(sub.next_received, n)
    sub.close()
    ctx.term()
    return result


def _run(label: str, receive: Any, endpoint: str, messages: list[list[bytes]]) -> float:
    SENT.clear()
    ctx: zmq.Context[Any] = zmq.Context()
    thread = threading.Thread(target=_publish, args=(ctx, endpoint, messages))
    thread.start()
    got, seconds = asyncio.run(receive)
    thread.join()
    ctx.term()
    if got < len(messages):
        seconds -= 1.0  # the second of silence that ended it
    rate = got / seconds if seconds > 0 else 0.0
    print(f"{label:<28} {got:>8} received  {rate:>12,.0f} msg/s")
    return rate


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--sources", type=int, default=2, choices=(1, 2))
    args = p.parse_args()
    messages = _frames(Codec(username="bench"), args.messages)
    endpoint = "tcp://127.0.0.1:47611"
    silent = ["tcp://127.0.0.1:47612"] if args.sources == 2 else []
    ref = _run(
        "reference (zmq.asyncio SUB)", _reference(endpoint, args.messages), endpoint, messages
    )
    ours = _run(
        f"Subscription ({args.sources} source(s))",
        _rovbus([endpoint, *silent], args.messages),
        endpoint,
        messages,
    )
    print(f"ratio Subscription/reference: {ours / ref:.2f}" if ref else "no reference rate")


if __name__ == "__main__":
    main()
