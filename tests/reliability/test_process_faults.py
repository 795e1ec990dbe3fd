"""Faults with real processes: a node killed and restarted, SIGTERM under traffic, and a
subscriber that stops reading (its loss counted by itself)."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path

import can
import pytest
import zmq
import zmq.asyncio

from rovbus.client import BlockingClient
from rovbus.errors import RequestTimeout
from rovbus.transport import SocketOptions, Subscriber
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from tests.helpers.daemons import node_process
from tests.helpers.systemfile import node_toml
from tests.helpers.waiting import until
from tests.reliability.threads import NodeThread, Peer, frame_with, next_matching

INTERVAL = 0.2  # the test systems' heartbeat interval


def _state(client: BlockingClient, node: str) -> tuple[str, str | None]:
    row = next(r for r in client.node_table(wait=0) if r.node == node)
    return row.state, row.session


def _until(
    client: BlockingClient, node: str, states: set[str], timeout: float
) -> tuple[float, str, str | None]:
    """Poll the node table every 20 ms until the node is in one of ``states``: (monotonic
    time it was seen so, the state seen, its session)."""

    def seen() -> tuple[float, str, str | None] | None:
        state, session = _state(client, node)
        return (time.monotonic(), state, session) if state in states else None

    return until(seen, timeout, f"{node} in {states}")


def test_kill_9_late_then_dead_then_back_and_subscribers_resume(
    write_system, tmp_path: Path
) -> None:
    config = write_system(node_toml("alpha"), interval=INTERVAL)
    with BlockingClient.from_system(config, group="vehicle") as client:
        sub = client.subscribe(["alpha/"])  # heartbeats and frames; never restarted
        with node_process(config, "alpha", tmp_path) as (proc, systemd):
            systemd.wait_for("READY=1")
            sub.ready(timeout=10)
            _, _, first_session = _until(client, "alpha", {"alive"}, timeout=5)
            client.send_frames("alpha", "can0", ["123#01"])
            next_matching(sub, frame_with(b"\x01"), timeout=5)

            proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            late, seen, _ = _until(client, "alpha", {"late", "dead"}, timeout=5)
            assert seen == "late", "went dead without being late first"
            dead, _, _ = _until(client, "alpha", {"dead"}, timeout=5)
            print(f"measured: late {late - killed:.3f} s, dead {dead - killed:.3f} s after kill")
            with pytest.raises(RequestTimeout):
                client.request("alpha", "kernel_info", timeout=0.3, retries=1)

        with node_process(config, "alpha", tmp_path) as (proc, systemd):
            systemd.wait_for("READY=1")
            ready = time.monotonic()
            back, seen, session = _until(client, "alpha", {"restarted", "alive"}, timeout=5)
            # the first heartbeat goes out at start; the SUB reconnects on its own (100 ms)
            assert seen == "restarted"
            print(f"measured: restarted {back - ready:.3f} s after READY=1")
            assert session != first_session
            assert client.request("alpha", "kernel_info").content["status"] == "ok"
            # the subscriber's own socket has rejoined once the new session's beat is on it
            # (ZeroMQ reconnects each socket on its own timer; what the new node publishes
            # before that does not reach it, as with any PUB/SUB)
            next_matching(sub, lambda m: m.content.get("session") == session, timeout=5)
            client.send_frames("alpha", "can0", ["123#02"])
            next_matching(sub, frame_with(b"\x02"), timeout=5)
            sub.close()
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0


def test_sigterm_during_a_burst_of_sends_finishes_them_and_exits_0(
    write_system, tmp_path: Path
) -> None:
    config = write_system(node_toml("alpha"), interval=INTERVAL)
    codec = Codec(username="op")
    ctx = zmq.Context()
    with node_process(config, "alpha", tmp_path) as (proc, systemd):
        systemd.wait_for("READY=1")
        with BlockingClient.from_system(config, group="vehicle") as client:
            sub = client.subscribe(["alpha/can/"])
            sub.ready(timeout=10)
            shell = ctx.socket(zmq.DEALER)
            shell.setsockopt(zmq.LINGER, 0)
            shell.connect(str(client.client.routes.route("alpha").endpoint("shell")))
            burst, per_request = 300, 8
            for i in range(burst):
                frames = [f"1{j:02X}#{i:04X}" for j in range(per_request)]
                request = codec.message("can_send_request", {"bus": "can0", "frames": frames})
                shell.send_multipart(codec.encode(request))
            # the node is at work on the burst (the rest in flight, a transmit queue filling)
            assert shell.poll(10_000), "no reply to the first request"
            replies = [codec.decode(shell.recv_multipart())]
            proc.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            assert proc.wait(timeout=10) == 0
            took = time.monotonic() - signalled
            # the rest of the replies (an undercount here only makes the check below weaker)
            while shell.poll(500):
                replies.append(codec.decode(shell.recv_multipart()))
            sent = sum(r.content["sent"] for r in replies if r.content["status"] == "ok")
            published = 0
            deadline = time.monotonic() + 10
            while published < sent and (left := deadline - time.monotonic()) > 0:
                try:
                    msg = sub.recv(timeout=left)
                except TimeoutError:
                    break
                published += msg.msg_type == "can_frame" and msg.content["dir"] == "tx"
            sub.close()
    ctx.destroy(linger=0)
    # drain deadline 1 s, sockets' linger 200 ms, context teardown
    print(f"measured: exit 0 {took:.3f} s after SIGTERM; {sent} frames sent, {published} published")
    assert sent > 0
    # every frame the node said it sent went on the wire (and was published as tx)
    assert published >= sent, (published, sent)


def test_a_subscriber_that_stops_reading_costs_nobody_else_a_frame_and_counts_its_loss(
    node_thread: Callable[..., NodeThread],
) -> None:
    node = node_thread()
    peer = Peer(node, Codec(username="op"))
    channel = node.daemon.config.bus("can0").channel
    writer = can.Bus(interface="virtual", channel=channel)
    total, rate = 20_000, 8_000.0
    topic = "alpha/can/can0/100"

    def frame(can_id: int, index: int) -> can.Message:
        return can.Message(
            arbitration_id=can_id, is_extended_id=False, data=index.to_bytes(8, "little")
        )

    def send_paced() -> None:
        start = time.monotonic()
        for i in range(total):
            writer.send(frame(0x100, i))
            if i % 64 == 63 and (ahead := start + i / rate - time.monotonic()) > 0:
                time.sleep(ahead)

    async def run() -> None:
        ctx = zmq.asyncio.Context()
        codec = Codec(username="op")
        pub = [node.endpoint("pub")]
        # the product's subscriber: it counts what it missed from the per-topic seq
        slow = Subscriber(
            ctx,
            pub,
            codec,
            ["alpha/can/"],
            options=SocketOptions(linger_ms=0, rcvhwm=50),
            setup=lambda sock: sock.setsockopt(zmq.RCVBUF, 4096),
        )
        fast = Subscriber(ctx, pub, codec, ["alpha/can/", "alpha/hb"])
        received: list[int] = []  # the fast one's frames on the topic, by index
        heard = asyncio.Event()
        want, enough = total, asyncio.Event()  # set when the fast one has ``want`` frames

        async def read_fast() -> None:
            while True:
                msg = await fast.recv()
                heard.set()
                if msg.topic == topic:
                    received.append(int.from_bytes(msg.content["data"], "little"))
                    if len(received) >= want:
                        enough.set()

        async def next_on_slow(wait: float) -> Message | None:
            try:
                return await asyncio.wait_for(slow.recv(), wait)
            except TimeoutError:
                return None

        reader = asyncio.create_task(read_fast())
        try:
            await asyncio.wait_for(heard.wait(), 5)  # the fast one has joined
            # the slow one has joined once a frame of another ID reaches it
            for _ in range(50):
                writer.send(frame(0x0FF, 0))
                if (msg := await next_on_slow(0.1)) is not None:
                    break
            else:
                raise AssertionError("the slow subscriber never joined")

            await asyncio.to_thread(send_paced)  # the slow one reads nothing meanwhile
            await asyncio.wait_for(enough.wait(), 10)
            # the fast subscriber and the node's CAN receive path lost nothing
            assert sorted(received) == list(range(total)), f"fast got {len(received)}"
            stats = peer.stats()
            bus = stats["buses"]["can0"]
            assert bus["rx"] >= total
            assert bus["rx_dropped"] == 0
            # ZeroMQ's PUB dropped for the slow one at its high-water mark, per peer and
            # silently (no EAGAIN on PUB): the node's pub.dropped cannot see it ...
            assert stats["sockets"]["pub"]["dropped"] == 0
            # ... the slow subscriber counts it, once a later frame of the topic arrives: it
            # reads again until a frame sent after the burst arrives (ZeroMQ keeps the order).
            # Whenever nothing comes for 0.5 s, one more such frame is sent, in case the
            # last one was dropped at the node's high-water mark for the slow one.
            slow_got: list[int] = []
            after = 0  # frames of the topic sent after the burst
            while not after or slow_got[-1:] != [total + after - 1]:
                if (msg := await next_on_slow(0.5)) is None:
                    assert after < 20, f"no frame after the burst reached the slow one: {after}"
                    writer.send(frame(0x100, total + after))
                    after += 1
                elif msg.topic == topic:
                    slow_got.append(int.from_bytes(msg.content["data"], "little"))
            burst = [i for i in slow_got if i < total]
            assert burst[0] == 0, "the slow one did not get the first frame"
            assert len(burst) < total, "the slow one lost nothing: the test did not load it"
            want = total + after
            enough.clear()
            if len(received) >= want:
                enough.set()
            await asyncio.wait_for(enough.wait(), 5)
            published = len(received)  # every frame of the topic, by the fast one's count
            assert published == total + after
            assert slow.stats.missed == published - len(slow_got)
            assert slow.missed_topics == {topic.encode(): published - len(slow_got)}
            assert fast.stats.missed == 0
            print(
                f"measured: fast {len(received)}/{published}, slow {len(slow_got)}/{published}"
                f" (missed {slow.stats.missed}, counted by the slow subscriber), "
                f"node rx {bus['rx']}"
            )
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            slow.close()
            fast.close()
            ctx.destroy(linger=0)

    try:
        asyncio.run(run())
        assert node.serving
    finally:
        writer.shutdown()
        peer.close()
