"""Daemons served on threads of their own, and blocking peers that talk to them as a
hostile peer would."""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import zmq

from rovbus.client.blocking import BlockingSubscription
from rovbus.config import SystemConfig
from rovbus.forwarder.daemon import ForwarderDaemon
from rovbus.node.daemon import NodeDaemon
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from tests.helpers.waiting import until

NodeOrForwarder = NodeDaemon | ForwarderDaemon


class DaemonThread:
    """A daemon started on an event loop thread of its own; it serves requests only when
    ``serve`` is true (else it reads nothing until stopped); ``stop`` begins its shutdown
    (``aclose`` follows ``serve``, or the stop when not serving); ``join`` waits for it
    and terminates the daemon's context."""

    def __init__(self, daemon: NodeOrForwarder, *, serve: bool) -> None:
        self.daemon = daemon
        self.serve = serve
        self.loop = asyncio.new_event_loop()
        self.crashed: BaseException | None = None
        self.context: zmq.Context[Any] | None = None
        self._started: Future[None] = Future()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._started.result(timeout=15)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.close()

    async def _main(self) -> None:
        self._idle = asyncio.Event()
        try:
            await self.daemon.start()
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        try:
            if self.serve:
                await self.daemon.serve()
            else:
                await self._idle.wait()
        except BaseException as exc:
            self.crashed = exc
        finally:
            # the test's sockets live in the daemon's context: terminating it would cut
            # them off from the last replies, so ``join`` does it once they are closed
            self.context, self.daemon.context = self.daemon.context, None
            await self.daemon.aclose()

    def call(self, function: Callable[[], object]) -> None:
        self.loop.call_soon_threadsafe(function)

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: it has stopped
            self.call(self.daemon.request_stop)
            self.call(self._idle.set)

    def wait_stopping(self, timeout: float = 10.0) -> None:
        """Until the daemon has begun to stop (it reads no new request from then on)."""
        until(lambda: self.daemon.state in ("stopping", "stopped"), timeout, "the stop")

    def join(self) -> None:
        """Wait for the shutdown; the test's sockets in the daemon's context must be
        closed first (terminating the context waits for them)."""
        self.stop()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the daemon did not stop"
        if self.context is not None:
            self.context.term()
        assert self.crashed is None, self.crashed


class NodeThread(DaemonThread):
    """A ``NodeDaemon`` started and served on a thread of its own."""

    def __init__(self, system: SystemConfig, name: str) -> None:
        self.system = system
        self.name = name
        super().__init__(NodeDaemon(system, name), serve=True)
        self.daemon: NodeDaemon

    @property
    def serving(self) -> bool:
        return self._thread.is_alive() and self.daemon.state == "ok" and self.crashed is None

    def endpoint(self, channel: str) -> str:
        return str(getattr(self.daemon.config.endpoints, channel))


class Peer:
    """Blocking sockets to one node: requests, raw frames, a subscriber. ``codec`` holds
    the system key (or none): ``pub_codec`` verifies what the node publishes; ``codec``
    is its ``for_start`` twin, for requests (the node's start key)."""

    def __init__(self, node: NodeThread, codec: Codec) -> None:
        self.node = node
        self.codec = codec.for_start(node.name, node.daemon.codec.session)
        self.pub_codec = codec
        self.ctx = zmq.Context()
        self._dealers: dict[str, zmq.Socket[bytes]] = {}
        #: what ``request`` read on a dealer that was not its reply, for ``drain``
        self.stray: dict[str, list[list[bytes]]] = {}

    def dealer(self, channel: str) -> zmq.Socket[bytes]:
        sock = self._dealers.get(channel)
        if sock is None:
            sock = self.ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.connect(self.node.endpoint(channel))
            self._dealers[channel] = sock
        return sock

    def request(
        self, msg_type: str, content: dict[str, Any] | None = None, channel: str = "shell"
    ) -> Message:
        """Send a request on the channel's dealer and wait (5 s) for its reply."""
        sock = self.dealer(channel)
        request = self.codec.message(msg_type, content or {})
        sock.send_multipart(self.codec.encode(request))
        deadline = time.monotonic() + 5
        while (left := deadline - time.monotonic()) > 0:
            if not sock.poll(int(left * 1000) + 1):
                break
            frames = sock.recv_multipart()
            try:
                reply = self.codec.decode(frames)
            except Exception:
                self.stray.setdefault(channel, []).append(frames)
                continue
            if reply.parent_header.get("msg_id") == request.msg_id:
                return reply
            self.stray.setdefault(channel, []).append(frames)
        raise AssertionError(f"no reply to {msg_type} within 5 s")

    def drain(self, channel: str) -> list[list[bytes]]:
        """Everything the node sent this peer's dealer on ``channel`` and nobody read."""
        got = self.stray.pop(channel, [])
        sock = self.dealer(channel)
        while sock.poll(0):
            got.append(sock.recv_multipart())
        return got

    def stats(self) -> dict[str, Any]:
        return self.request("stats_request").content

    def subscriber(self, *prefixes: str, rcvhwm: int = 10_000) -> zmq.Socket[bytes]:
        sub = self.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, rcvhwm)
        for prefix in prefixes or ("",):
            sub.setsockopt(zmq.SUBSCRIBE, prefix.encode())
        sub.connect(self.node.endpoint("pub"))
        return sub

    def wait_for(
        self, sub: zmq.Socket[bytes], predicate: Callable[[Message], bool], timeout: float = 5.0
    ) -> Message:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if not sub.poll(int(left * 1000) + 1):
                break
            msg = self.pub_codec.decode(sub.recv_multipart())
            if predicate(msg):
                return msg
        raise AssertionError("no matching message on the subscriber")

    def close(self) -> None:
        self.ctx.destroy(linger=0)


def next_matching(
    sub: BlockingSubscription, predicate: Callable[[Message], bool], timeout: float
) -> Message:
    """The first message on ``sub`` that matches, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            msg = sub.recv(timeout=left)
        except TimeoutError:
            break
        if predicate(msg):
            return msg
    raise AssertionError(f"nothing matching on the subscriber within {timeout} s")


def frame_with(data: bytes) -> Callable[[Message], bool]:
    """A predicate for ``next_matching``: a CAN frame carrying ``data``."""
    return lambda m: m.msg_type == "can_frame" and m.content["data"] == data


def signed_extra(tmp_path: Path) -> str:
    key = tmp_path / "hmac.key"
    key.write_text("5eed" * 16 + "\n")
    key.chmod(0o600)
    return f'[security]\nkey_file = "{key}"\n\n'


def start_codec(ctx: zmq.Context[Any], pub: str, codec: Codec, name: str) -> Codec:
    """``codec``'s twin for requests to ``name``: signing with the key of its current
    start, from the session of its heartbeat on ``pub`` (a forwarder's cache replays it)."""
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, f"{name}/hb".encode())
    sub.connect(pub)
    try:
        assert sub.poll(10_000), f"no heartbeat of {name}"
        session: str = codec.decode(sub.recv_multipart()).header["session"]
        return codec.for_start(name, session)
    finally:
        sub.close()


def inproc(table: str) -> str:
    """A ``node_toml``/``forwarder_toml`` table with every tcp endpoint made inproc."""
    tag = uuid.uuid4().hex[:8]
    return re.sub(
        r'(\w+) = "tcp://127\.0\.0\.1:\d+"', lambda m: f'{m[1]} = "inproc://{tag}-{m[1]}"', table
    )


def dealer(
    ctx: zmq.Context[Any], endpoint: object, identity: bytes | None = None
) -> zmq.Socket[bytes]:
    sock = zmq.Socket(ctx, zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.SNDTIMEO, 5000)  # a send to a daemon gone fails, not hangs
    if identity is not None:
        sock.setsockopt(zmq.ROUTING_ID, identity)
    sock.connect(str(endpoint))
    return sock


def collect(
    sock: zmq.Socket[bytes], codec: Codec, count: int, timeout: float = 10.0
) -> list[Message]:
    """The first ``count`` replies on ``sock`` (fewer if ``timeout`` passes first)."""
    replies: list[Message] = []
    deadline = time.monotonic() + timeout
    while len(replies) < count and (left := deadline - time.monotonic()) > 0:
        if not sock.poll(int(left * 1000) + 1):
            break
        replies.append(codec.decode(sock.recv_multipart()))
    return replies


def by_parent(replies: list[Message]) -> dict[str, Message]:
    answered: dict[str, Message] = {}
    for reply in replies:
        parent = reply.parent_header["msg_id"]
        assert parent not in answered, f"two replies to {reply.msg_type} {parent}"
        answered[parent] = reply
    return answered


class Hold:
    """A request handler that holds its request until released (from the test thread)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._release: tuple[asyncio.AbstractEventLoop, asyncio.Event] | None = None

    async def __call__(self, request: Message) -> dict[str, Any]:
        event = asyncio.Event()
        self._release = (asyncio.get_running_loop(), event)
        self.entered.set()
        await event.wait()
        return {"status": "ok", "held": True}

    def release(self) -> None:
        assert self._release is not None
        loop, event = self._release
        loop.call_soon_threadsafe(event.set)
