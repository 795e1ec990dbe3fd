"""Answering requests: message type -> handler, each client's requests in order, clients
side by side.

A ``Dispatcher`` serves one ROUTER channel of a daemon (a node's shell or control, a
forwarder's control). The channel's ``RequestLoop`` hands it every good request
(``serve``, ``submit``), which never waits: the request joins the queue of its client, the ROUTER
identities it came with, and a worker per client carries out that client's requests one
after the other. So one client's slow request (a question on stdin, a long ``execute``, a
full transmit queue) delays only that client's own later requests, and never another's.

Carrying out a request: a reply already given to its ``msg_id`` (a client's retry) is
sent again; a retry of a request still in hand (Lazy Pirate retries on a fresh socket,
another identity) waits for that reply; otherwise ``on_state("busy", request)``, the
handler registered for its type (``add``), the reply (the handler's content, or Jupyter's
error form for a ``RovbusError`` or ``ValueError`` it raised, or ``UnknownRequest``
listing the types the channel answers), ``on_state("idle", request)``.

Memory stays bounded whatever peers do: at most ``max_clients`` clients with requests in
hand, at most ``depth`` requests queued per client and ``total`` in all; what does not
fit is dropped and counted (``DispatchStats.dropped``; the client's requester times out
and retries), and a worker ends when its client's queue is empty.

Stopping (the daemon's order, transport/server.py): the request loop stops intake;
``stop`` lets each client's request in hand finish and queues no more; ``finish`` waits
for the workers within the drain deadline and cancels the rest; ``refuse_left`` answers,
without acting on them, the requests cut off (``interrupted``) and those still queued
(``refused``); ``answered`` tells the loop's ``refuse_queued`` what a retry still on the
socket gets.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from rovbus.errors import RovbusError, UnknownRequest
from rovbus.ratelimit import RateLimiter
from rovbus.transport.channel import Channel
from rovbus.transport.server import Outcome, RequestLoop, refusal
from rovbus.transport.stats import Counters
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message, error_content, reply_type

__all__ = [
    "MAX_CLIENTS",
    "QUEUE_DEPTH",
    "QUEUE_TOTAL",
    "REPLY_CACHE_SIZE",
    "DispatchStats",
    "Dispatcher",
    "Handler",
    "ReplyCache",
]

#: a request handler: the request in, the reply's content out (with ``"status": "ok"``)
Handler = Callable[[Message], Awaitable[dict[str, Any]]]
#: told ``"busy"`` before a request is carried out and ``"idle"`` after its reply
StateHook = Callable[[Literal["busy", "idle"], Message], None]

#: at most, on one channel: clients with requests in hand, requests queued per client
#: (libzmq's default high-water mark of a peer's pipe, so a client that pipelines as much
#: as its socket lets it loses none), and requests queued in all
MAX_CLIENTS = 64
QUEUE_DEPTH = 1000
QUEUE_TOTAL = 4096
#: replies kept for retries, per daemon
REPLY_CACHE_SIZE = 256


class ReplyCache:
    """The replies a daemon gave, by the request's ``msg_id`` (the newest ``size``), and
    the requests in hand: a client's retry is answered again, never carried out twice."""

    def __init__(self, size: int = REPLY_CACHE_SIZE) -> None:
        self.size = size
        self._replies: OrderedDict[str, Message] = OrderedDict()
        #: msg_id -> the reply to come, of each request being carried out
        self.in_hand: dict[str, asyncio.Future[Message]] = {}

    def get(self, msg_id: str) -> Message | None:
        return self._replies.get(msg_id)

    def keep(self, msg_id: str, reply: Message) -> None:
        self._replies[msg_id] = reply
        if len(self._replies) > self.size:
            self._replies.popitem(last=False)


@dataclass(slots=True)
class DispatchStats(Counters):
    """What a dispatcher took and dropped; ``clients`` is how many have requests in hand."""

    requests: int = 0
    dropped: int = 0
    retries_waited: int = 0
    clients: int = 0


@dataclass(slots=True, eq=False)
class _Client:
    """One client's queue, the request its worker is carrying out, and the worker."""

    queue: deque[Message] = field(default_factory=deque)
    in_hand: Message | None = None
    task: asyncio.Task[None] | None = None


class Dispatcher:
    """Serves one ROUTER channel: handlers by message type, a worker per client."""

    def __init__(
        self,
        who: str,
        codec: Codec,
        logger: logging.Logger,
        *,
        cache: ReplyCache,
        where: str | None = None,
        hint: str = "",
        on_state: StateHook | None = None,
        max_clients: int = MAX_CLIENTS,
        depth: int = QUEUE_DEPTH,
        total: int = QUEUE_TOTAL,
    ) -> None:
        #: what signs the replies (the daemon's start codec)
        self.codec = codec
        #: the channel served (``serve``)
        self.channel: Channel | None = None
        #: the daemon, as refusals name it ("node alpha")
        self.who = who
        #: what the unknown-request reply says does not answer ("shell channel of node alpha")
        self.where = where or who
        self.hint = hint
        self.logger = logger
        self.cache = cache
        self.on_state = on_state
        self.max_clients = max_clients
        self.depth = depth
        self.total = total
        self._queued = 0  # requests in the clients' queues, all told
        self.stats = DispatchStats()
        self._handlers: dict[str, Handler] = {}
        self._clients: dict[tuple[bytes, ...], _Client] = {}
        self._interrupted: set[str] = set()
        self._stopping = False
        self._log = RateLimiter(10.0)

    # -- handlers -----------------------------------------------------------------------

    def add(self, msg_type: str, handler: Handler) -> None:
        """Answer ``msg_type`` (``"..._request"``) with ``handler``; one handler a type."""
        if not msg_type.endswith("_request"):
            raise ValueError(f"a request type ends with _request: {msg_type!r}")
        if msg_type in self._handlers:
            raise ValueError(f"{self.where} answers {msg_type} already")
        self._handlers[msg_type] = handler

    @property
    def known(self) -> tuple[str, ...]:
        """The request types answered, in the order they were added."""
        return tuple(self._handlers)

    # -- taking requests ----------------------------------------------------------------

    async def serve(self, loop: RequestLoop, channel: Channel) -> None:
        """Take every good request of ``channel`` until ``loop`` stops."""
        self.channel = channel
        await loop.serve(channel, self.submit)

    async def submit(self, request: Message) -> None:
        """Queue ``request`` behind its client's earlier ones; never waits (the channel's
        ``RequestLoop`` calls it for every good request)."""
        key = request.identities
        client = self._clients.get(key)
        if client is None:
            if self._stopping:
                return  # intake has stopped; refuse_queued answers what is on the socket
            if len(self._clients) >= self.max_clients:
                self._drop(request, f"{self.max_clients} clients have requests in hand")
                return
            client = self._clients[key] = _Client()
            self.stats.clients = len(self._clients)
        elif len(client.queue) >= self.depth:
            self._drop(request, f"its client has {self.depth} requests queued")
            return
        if self._queued >= self.total:
            self._drop(request, f"{self.total} requests are queued")
            if not client.queue and client.task is None:
                del self._clients[key]
                self.stats.clients = len(self._clients)
            return
        self.stats.requests += 1
        self._queued += 1
        client.queue.append(request)
        if client.task is None:
            client.task = asyncio.create_task(self._work(key, client))

    def _drop(self, request: Message, why: str) -> None:
        self.stats.dropped += 1
        self._log.log(
            self.logger,
            logging.WARNING,
            "dropped",
            "%s: dropped a %s: %s",
            self.where,
            request.msg_type,
            why,
        )

    async def _work(self, key: tuple[bytes, ...], client: _Client) -> None:
        while client.queue and not self._stopping:
            request = client.in_hand = client.queue.popleft()
            self._queued -= 1
            try:
                answered = await self._answer(request)
            except Exception:  # a handler bug must not stop the daemon
                self.logger.exception(
                    "%s: unhandled error answering %s", self.where, request.msg_type
                )
                answered = True
            if not answered and self._stopping:
                break  # refuse_left tells it what became of its request
            client.in_hand = None
        client.task = None
        if client.in_hand is None and not client.queue:
            del self._clients[key]
            self.stats.clients = len(self._clients)

    async def _answer(self, request: Message) -> bool:
        """Carry out ``request`` and reply; ``False`` when it is a retry of a request in
        hand that ended without a reply (a bug, or cut off while stopping)."""
        channel = self._served()
        cached = self._given(request)
        if cached is not None:  # a client's retry: answer again, do not act twice
            await channel.send(cached)
            return True
        in_hand = self.cache.in_hand
        pending = in_hand.get(request.msg_id)
        if pending is not None:  # a retry on another socket while the first is carried out
            self.stats.retries_waited += 1
            await asyncio.wait([pending])
            reply = self._given(request)
            if reply is None:
                return False
            await channel.send(reply)
            return True
        done: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        in_hand[request.msg_id] = done
        if self.on_state is not None:
            self.on_state("busy", request)
        try:
            try:
                handler = self._handlers.get(request.msg_type)
                if handler is None:
                    raise UnknownRequest(
                        f"{self.where} does not answer {request.msg_type!r}; it answers "
                        f"{', '.join(self._handlers)}{self.hint}"
                    )
                content = await handler(request)
            except (RovbusError, ValueError) as exc:
                content = error_content(exc)
            reply = self.codec.reply(request, reply_type(request.msg_type), content)
            self.cache.keep(request.msg_id, reply)
            done.set_result(reply)
            await channel.send(reply)
        finally:
            del in_hand[request.msg_id]
            if not done.done():
                done.cancel()
            if self.on_state is not None:
                self.on_state("idle", request)
        return True

    # -- stopping -------------------------------------------------------------------------

    def stop(self) -> None:
        """Each client's request in hand finishes; the ones queued behind it wait for
        ``refuse_left``."""
        self._stopping = True

    async def finish(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the requests in hand; cancel the rest."""
        tasks = [c.task for c in self._clients.values() if c.task is not None]
        if not tasks:
            return
        _, running = await asyncio.wait(tasks, timeout=timeout)
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)

    async def refuse_left(self) -> int:
        """Answer every request cut off (``interrupted``) or still queued (``refused``,
        or its reply when it is a retry of one carried out); return how many."""
        count = 0
        for client in self._clients.values():
            if client.in_hand is not None:
                self._interrupted.add(client.in_hand.msg_id)
                client.queue.appendleft(client.in_hand)
                client.in_hand = None
            while client.queue:
                self._queued -= 1
                reply = self.answered(client.queue.popleft())
                await self._served().send(reply)
                count += 1
        self._clients.clear()
        self.stats.clients = 0
        return count

    def _given(self, request: Message) -> Message | None:
        """The reply already given to ``request``'s ``msg_id``, anew (fresh header and
        signature, so the client's replay guard takes it), addressed to ``request``."""
        cached = self.cache.get(request.msg_id)
        if cached is None:
            return None
        return self.codec.reply(request, cached.msg_type, cached.content)

    def answered(self, request: Message) -> Message:
        """What a request left at shutdown gets: the reply already given to its
        ``msg_id``, else a ``ShuttingDown`` refusal (``interrupted`` when it, or an
        earlier copy, was cut off midway)."""
        reply = self._given(request)
        if reply is not None:
            return reply
        cut = request.msg_id in self._interrupted
        outcome: Outcome = "interrupted" if cut else "refused"
        return refusal(self.codec, request, self.who, outcome)

    def _served(self) -> Channel:
        if self.channel is None:
            raise RuntimeError("Dispatcher: no channel served yet")
        return self.channel
