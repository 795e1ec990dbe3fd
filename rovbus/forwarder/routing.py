"""Requests by node name across a boundary, and their replies back.

A client outside sends to the forwarder's ``request`` ROUTER with two routing frames just
before the delimiter::

    [return stack ..., b"<node>", b"<shell|control>", b"<IDS|MSG>", signature, header, ...]

The ROUTER has put the client's identity first in the return stack. The router takes the
last two frames before the delimiter as (node, channel) and:

- a node of the inner group: sends ``[return stack ..., DELIM, ...]`` on a DEALER
  connected to that node's channel. The node's ROUTER answers with the return stack as
  identities, which comes back on the DEALER and goes out on the ROUTER to the client.
- a node behind an inner forwarder: sends ``[return stack ..., node, channel, DELIM, ...]``
  to that forwarder's ``request`` endpoint, which does the same; each hop adds one
  identity to the stack on the way in and removes it on the way out.

Signatures do not cover identity frames, so a stack can grow without re-signing; the one
change made to a request is the name of the CURVE key it came with, written into its
metadata and signed again (:mod:`rovbus.forwarder.curvekey`). With a key, a request is
verified here before it goes in, with the start key of the node it names (derived from
the system key and the session of the node's latest heartbeat, which the last-value cache
keeps: ``session_of``), as the node itself will: a forged or replayed request, one signed
for another node or an earlier start of this one, and one for a node without a known start
(not behind this forwarder, or not heard yet) are dropped and counted, and never
answered. Its reply is passed through untouched.

Every request verified gets an answer: the node's reply, or an error reply signed with the
same start key, in the request's serializer, ``msg_type`` = the request's with ``_reply``:
the channel is not shell or control, the node is not connected, or no reply came within
the timeout (plus a margin per forwarder on the way, so the innermost hop that knows most
answers first). Without a key, a request for an unknown node is answered too (the reply
names the nodes behind this forwarder). A reply that comes after its timeout is dropped
and counted.

Stopping (``stop_intake``, ``settle``, ``refuse_queued``): no new request is read; the
replies to requests already forwarded are routed back for a short while; then what is
still queued on the ROUTER, and what waits for a node to connect, is answered with a
``ShuttingDown`` error reply (not forwarded, so not carried out). A request forwarded
whose reply has not come back by then gets nothing from us: the node may have carried it
out. A retry of it (same ``msg_id``) already queued is told just that; one sent through
the restarted forwarder gets the node's own reply from its cache.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.asyncio

from rovbus.config.reach import CHANNELS, NodeRoute
from rovbus.errors import (
    NodeUnreachable,
    RouteError,
    SignatureError,
    UnknownNode,
    WireError,
)
from rovbus.forwarder.curvekey import stamped
from rovbus.forwarder.topology import Topology
from rovbus.ratelimit import RateLimiter
from rovbus.transport.channel import peek_header
from rovbus.transport.curve import SocketSetup
from rovbus.transport.intake import Intake, read_now
from rovbus.transport.sendnow import send_now
from rovbus.transport.server import DRAIN_DEADLINE, DRAIN_LIMIT, Outcome, refusal
from rovbus.transport.sockets import SocketOptions, connect
from rovbus.transport.stats import Counters
from rovbus.wire.codec import DELIMITER, Codec
from rovbus.wire.message import Message, error_content, reply_type
from rovbus.wire.serializers import Serializer, detect, unpack

__all__ = ["RequestRouter"]

log = logging.getLogger(__name__)

_CHANNEL_FRAMES = frozenset(channel.encode() for channel in CHANNELS)
DEFAULT_TIMEOUT = 3.0
HOP_MARGIN = 0.5  # seconds added to the timeout per forwarder between us and the node
MAX_PENDING = 10_000

#: DEALERs towards the inner side queue nothing for a peer that is not connected
#: (``IMMEDIATE``): a request to a node that is down is refused at once, not delivered
#: minutes later when it comes back.
INNER_OPTIONS = SocketOptions(linger_ms=0, sndhwm=1000, rcvhwm=1000)


@dataclass(slots=True)
class Pending:
    header: dict[str, Any]
    serializer: Serializer
    stack: tuple[bytes, ...]
    target: NodeRoute
    channel: str
    codec: Codec  # what verified the request signs the error reply to it
    timer: asyncio.TimerHandle | None = None


@dataclass(slots=True)
class RouterStats(Counters):
    requests: int = 0
    forwarded: int = 0
    replies: int = 0
    errors: int = 0  # error replies the forwarder wrote itself
    unknown_node: int = 0
    unreachable: int = 0
    timeouts: int = 0
    late_replies: int = 0
    rejected: int = 0  # malformed, unsigned, forged, replayed
    per_node: dict[str, int] = field(default_factory=dict)


class RequestRouter:
    """The outer ``request`` ROUTER and one DEALER per inner endpoint.

    ``codec`` holds the system key (or none); ``session_of`` gives a node's current session
    (``None`` when unknown), whose start key its requests are verified with.
    """

    def __init__(
        self,
        ctx: zmq.asyncio.Context,
        name: str,
        topology: Topology,
        codec: Codec,
        outer: zmq.asyncio.Socket,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        inner_setup: SocketSetup | None = None,
        session_of: Callable[[str], str | None] = lambda node: None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"the request timeout must be positive, got {timeout}")
        self.ctx = ctx
        self.name = name
        self.topology = topology
        self.codec = codec
        #: the signatures of the requests taken, whichever node's start key verified them
        self.replay_guard = codec.new_replay_guard()
        self.session_of = session_of
        self._starts: dict[str, tuple[str, Codec]] = {}  # node -> (session, its codec)
        self.outer = outer
        self.timeout = timeout
        self.inner_setup = inner_setup
        self.stats = RouterStats()
        self.dealers: dict[str, zmq.asyncio.Socket] = {}
        self.pending: dict[tuple[tuple[bytes, ...], str], Pending] = {}
        self._log_limit = RateLimiter(10.0)
        #: requests waiting for their node to connect (see ``_send_when_connected``)
        self._tasks: dict[asyncio.Task[None], tuple[Message, Codec]] = {}
        self._intake = Intake(log)  # requests from outside; stopped by ``stop_intake``
        self._replies = Intake(log)  # replies from inside; never stopped, cancelled
        self._settled: asyncio.Event | None = None

    # -- sockets ----------------------------------------------------------------------

    def open(self) -> None:
        """Connect a DEALER to every inner endpoint a request can go to."""
        secure = {t.shell for t in self.topology.targets.values() if t.via is not None}
        for target in self.topology.targets.values():
            for endpoint in (target.shell, target.control):
                if endpoint in self.dealers:
                    continue
                sock = self.ctx.socket(zmq.DEALER)
                self.dealers[endpoint] = sock
                INNER_OPTIONS.apply(sock)
                sock.setsockopt(zmq.IMMEDIATE, 1)
                if endpoint in secure and self.inner_setup is not None:
                    self.inner_setup(sock)
                connect(sock, endpoint, f"request to {target.via or target.node}")

    async def serve(self) -> None:
        """Route requests and replies until cancelled."""
        async with asyncio.TaskGroup() as tg:
            for sock in self.dealers.values():
                tg.create_task(self._serve_replies(sock))
            tg.create_task(self._serve_requests())

    def stop_intake(self) -> None:
        """Read no new request; replies to those forwarded are still routed back."""
        self._intake.stop()

    async def settle(self, timeout: float) -> None:
        """Wait until every forwarded request has had its reply (or error), at most
        ``timeout`` seconds."""
        if not self.pending:
            return
        self._settled = asyncio.Event()
        try:
            async with asyncio.timeout(timeout):
                await self._settled.wait()
        except TimeoutError:
            pass
        finally:
            self._settled = None

    def _forgot(self) -> None:
        """A pending request was answered or expired."""
        if self._settled is not None and not self.pending:
            self._settled.set()

    async def refuse_queued(
        self, who: str, *, until: float | None = None, limit: int = DRAIN_LIMIT
    ) -> int:
        """Answer with ``ShuttingDown`` the requests still waiting for their node to
        connect and those still queued on the ROUTER (read without blocking: at most
        ``limit``, until the monotonic time ``until``); return how many were answered.
        Bad messages are counted and answered (or not) as when routing."""
        if until is None:
            until = time.monotonic() + DRAIN_DEADLINE
        count = 0
        for task, (request, codec) in list(self._tasks.items()):
            if task.done():  # it sent the request or answered it already
                continue
            task.cancel()
            self._refuse(request, codec, who)
            count += 1
        self._tasks.clear()
        for _ in range(limit):
            if self.outer.closed or time.monotonic() >= until:
                break
            frames = await read_now(self.outer)
            if frames is None:
                break
            verified = await self._verified(frames)
            if verified is None:
                continue
            queued, codec = verified
            if len(queued.identities) >= 3:  # the ROUTER's identity, then node and channel
                queued = Message(
                    queued.header,
                    queued.parent_header,
                    identities=queued.identities[:-2],
                    serializer=queued.serializer,
                )
            # a client's retry of a request forwarded whose reply has not come back
            forwarded = any(msg_id == queued.msg_id for _, msg_id in self.pending)
            self._refuse(queued, codec, who, "forwarded" if forwarded else "refused")
            count += 1
        return count

    def _refuse(
        self, request: Message, codec: Codec, who: str, outcome: Outcome = "refused"
    ) -> None:
        self.stats.errors += 1
        self._send_out(codec.encode(refusal(codec, request, who, outcome)))

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        for pending in self.pending.values():
            if pending.timer is not None:
                pending.timer.cancel()
        self.pending.clear()
        for sock in self.dealers.values():
            if not sock.closed:
                sock.close(linger=0)

    # -- the way in -------------------------------------------------------------------

    async def _serve_requests(self) -> None:
        outer, stats = self.outer, self.stats
        while (got := await self._intake.next_with_user_id(outer, stats, "request")) is not None:
            try:
                await self.route(*got)
            except Exception:  # a bug here must not stop the forwarder
                log.exception("%s: unhandled error routing a request", self.name)

    async def _verified(self, frames: list[bytes]) -> tuple[Message, Codec] | None:
        """Count a request and decode it, with the codec that signs what answers it;
        ``None`` when it was bad (dropped, or answered with an error reply when it can
        be answered)."""
        self.stats.requests += 1
        codec = self._codec_for(frames)
        if codec is None:
            self._reject(
                "dropped a request: no start key for the node it names (no routing frames, "
                "not behind this forwarder, or no heartbeat of it heard yet)"
            )
            return None
        try:
            return codec.decode(frames, self.replay_guard), codec  # identities are not signed
        except SignatureError as exc:
            self._reject(f"dropped a request: {exc}")
        except WireError as exc:
            await self._refuse_unreadable(frames, exc, codec)
        return None

    def _codec_for(self, frames: list[bytes]) -> Codec | None:
        """Without a key, ours; with one, the codec of the current start of the node the
        routing frames name (``None`` when there is none to verify with)."""
        if not self.codec.signer.enabled:
            return self.codec
        try:
            index = frames.index(DELIMITER)
        except ValueError:
            return self.codec  # cannot decode: refused as unreadable, never answered
        node = bytes(frames[index - 2]).decode("utf-8", "replace") if index >= 3 else ""
        session = self.session_of(node) if node in self.topology.targets else None
        if session is None:
            return None
        known = self._starts.get(node)
        if known is None or known[0] != session:
            known = self._starts[node] = (session, self.codec.for_start(node, session))
        return known[1]

    async def route(self, frames: list[bytes], user_id: str = "") -> None:
        """Route one request; ``user_id``: ZAP's for the connection it came on (which
        CURVE key, rovbus.forwarder.curvekey)."""
        verified = await self._verified(frames)
        if verified is None:
            return
        request, codec = verified
        index = len(request.identities)
        if index < 3:  # the ROUTER's identity, then node and channel
            await self._error(
                request,
                codec,
                RouteError(
                    f"a request to forwarder {self.name} needs two routing frames before "
                    "the delimiter: [node, channel]"
                ),
            )
            return
        stack = request.identities[:-2]
        node_frame, channel_frame = request.identities[-2:]
        body = stamped(codec, request, frames[index + 1 :], user_id)
        request = Message(
            request.header,
            request.parent_header,
            identities=stack,
            serializer=request.serializer,
        )
        node = node_frame.decode("utf-8", "replace")
        target = self.topology.targets.get(node)
        if channel_frame not in _CHANNEL_FRAMES:
            channel = channel_frame.decode("utf-8", "replace")
            await self._error(
                request,
                codec,
                RouteError(f"channel {channel!r} is not routed; use shell or control"),
            )
            return
        if target is None:
            self.stats.unknown_node += 1
            known = ", ".join(self.topology.targets) or "none"
            await self._error(
                request,
                codec,
                UnknownNode(
                    f"no node {node!r} behind forwarder {self.name} "
                    f"(inner group {self.topology.forwarder.inner!r}); known nodes: {known}"
                ),
            )
            return
        channel = channel_frame.decode()
        if target.via is None:
            out = [*stack, DELIMITER, *body]
        else:
            out = [*stack, node_frame, channel_frame, DELIMITER, *body]
        sock = self.dealers[target.endpoint(channel)]
        if not send_now(sock, out):
            # not connected (yet, or any more): wait for it within the timeout, off this loop
            task = asyncio.create_task(
                self._send_when_connected(sock, out, request, codec, target, channel)
            )
            self._tasks[task] = (request, codec)
            task.add_done_callback(self._done_waiting)
            return
        self._sent(request, codec, stack, target, channel)

    def _done_waiting(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)

    async def _send_when_connected(
        self,
        sock: zmq.asyncio.Socket,
        out: list[bytes],
        request: Message,
        codec: Codec,
        target: NodeRoute,
        channel: str,
    ) -> None:
        """Retry a request to an endpoint not connected; an error reply at the timeout."""
        deadline = asyncio.get_running_loop().time() + self.timeout
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            if sock.closed:
                return
            if send_now(sock, out):
                self._sent(request, codec, request.identities, target, channel)
                return
        self.stats.unreachable += 1
        where = f"forwarder {target.via}" if target.via else f"node {target.node!r}"
        self._send_error_now(
            request,
            codec,
            NodeUnreachable(
                f"{where} has not been connected to forwarder {self.name} for "
                f"{self.timeout:g} s (down or unreachable); request {request.msg_type} not sent"
            ),
        )

    def _sent(
        self, request: Message, codec: Codec, stack: tuple[bytes, ...], target: NodeRoute, ch: str
    ) -> None:
        self.stats.forwarded += 1
        self.stats.per_node[target.node] = self.stats.per_node.get(target.node, 0) + 1
        self._expect(request, codec, stack, target, ch)

    def _expect(
        self, request: Message, codec: Codec, stack: tuple[bytes, ...], target: NodeRoute, ch: str
    ) -> None:
        key = (stack, request.msg_id)
        old = self.pending.pop(key, None)
        if old is not None and old.timer is not None:
            old.timer.cancel()
        if len(self.pending) >= MAX_PENDING:  # bounded: the oldest gets its error now
            oldest_key = next(iter(self.pending))
            self._expire(oldest_key)
        pending = Pending(request.header, request.serializer, stack, target, ch, codec)
        delay = self.timeout + HOP_MARGIN * target.hops
        pending.timer = asyncio.get_running_loop().call_later(delay, self._expire, key)
        self.pending[key] = pending

    def _expire(self, key: tuple[tuple[bytes, ...], str]) -> None:
        pending = self.pending.pop(key, None)
        if pending is None:
            return
        if pending.timer is not None:
            pending.timer.cancel()
        self._forgot()
        self.stats.timeouts += 1
        target = pending.target
        delay = self.timeout + HOP_MARGIN * target.hops
        where = f" via forwarder {target.via}" if target.via else ""
        exc = NodeUnreachable(
            f"node {target.node!r}{where} did not answer {pending.header['msg_type']} on "
            f"{pending.channel} within {delay:g} s (forwarder {self.name})"
        )
        request = Message(
            header=pending.header, identities=pending.stack, serializer=pending.serializer
        )
        self._send_error_now(request, pending.codec, exc)

    # -- the way out --------------------------------------------------------------------

    async def _serve_replies(self, sock: zmq.asyncio.Socket) -> None:
        while (frames := await self._replies.next(sock, self.stats, "replies")) is not None:
            key = self._reply_key(frames)
            pending = self.pending.pop(key, None) if key is not None else None
            if pending is None:
                self.stats.late_replies += 1
                continue
            if pending.timer is not None:
                pending.timer.cancel()
            self._send_out(frames)
            self.stats.replies += 1
            self._forgot()

    @staticmethod
    def _reply_key(frames: list[bytes]) -> tuple[tuple[bytes, ...], str] | None:
        try:
            index = frames.index(DELIMITER)
            parent_frame = frames[index + 3]
            parent = unpack(parent_frame, detect(parent_frame), "parent_header")
        except (ValueError, IndexError, WireError):
            return None
        msg_id = parent.get("msg_id")
        if not isinstance(msg_id, str):
            return None
        return tuple(frames[:index]), msg_id

    # -- answers of our own ---------------------------------------------------------------

    def _send_out(self, frames: list[bytes]) -> None:
        if not send_now(self.outer, frames):  # the client's pipe is full: it is not reading
            self._reject("a reply was dropped: the client does not read")

    def _send_error_now(self, request: Message, codec: Codec, exc: BaseException) -> None:
        self.stats.errors += 1
        reply = codec.reply(request, reply_type(request.msg_type), error_content(exc))
        self._send_out(codec.encode(reply))

    async def _error(self, request: Message, codec: Codec, exc: BaseException) -> None:
        self._send_error_now(request, codec, exc)

    async def _refuse_unreadable(
        self, frames: list[bytes], exc: BaseException, codec: Codec
    ) -> None:
        """An error reply if the header can be read without trusting the message."""
        identities, header, serializer = peek_header(frames)
        self._reject(f"a bad request: {exc}")
        if header is None or not identities:
            return
        if not codec.signature_holds(frames):
            # with a key, never answer what could not be verified (e.g. too few frames to
            # check): a signed reply parented to an attacker's header would help a forger
            return
        request = Message(header=header, identities=identities, serializer=serializer)
        self._send_error_now(request, codec, exc)

    def _reject(self, what: str) -> None:
        self.stats.rejected += 1
        self._log_limit.log(log, logging.WARNING, what.split(":")[0], "%s: %s", self.name, what)
