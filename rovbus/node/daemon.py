"""The node daemon: a computer's CAN buses onto the ZeroMQ overlay.

One ``NodeDaemon`` per process. ``start`` binds every socket and opens every bus (and
raises, before anything is announced, if one cannot); ``serve`` answers requests, echoes
heartbeat pings and publishes heartbeats until it is stopped; ``aclose`` finishes pending
transmissions within a deadline and releases everything. The channels
(docs/architecture.md, The node daemon):

    pub      XPUB    CAN frames, heartbeats, status, in the system's serializer
                     (sent as on a PUB; its subscriptions are capped, transport.subguard)
    shell    ROUTER  kernel_info, node_info, can_send, stats, execute
    control  ROUTER  shutdown, interrupt, tx_off, tx_on, kernel_info
    stdin    ROUTER  the node asking the requesting client for input
    hb       ROUTER  raw echo of every ping, as a REP (transport/heartbeat.py)
    iopub    XPUB    (optional) the side effects of requests only, in JSON, for Jupyter

pub and iopub are XPUBs whose subscriptions are capped (transport/subguard.py). With
``[security]``, pub is signed with the system key and everything else with the key of
this start of the node (docs/protocol.md, Signing).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import can
import zmq
import zmq.asyncio

from rovbus import __version__
from rovbus.can import CanPort, FrameBatcher, RingBuffer
from rovbus.config import NodeConfig, SystemConfig
from rovbus.config.reach import node_endpoints
from rovbus.config.subscriptions import SubscriptionCaps, SubscriptionPlan
from rovbus.errors import CanError, ConfigError, RovbusError, ShuttingDown
from rovbus.node.connection_file import (
    connection_info_for,
    default_connection_path,
    write_connection_file,
)
from rovbus.node.console import CommandError, run_command
from rovbus.node.heartbeat import tick_forever
from rovbus.node.requests import (
    CONTROL_REQUESTS,
    SHELL_REQUESTS,
    UnknownRequest,
    frames_to_send,
    kernel_info,
    tx_off_reason,
    tx_reason,
)
from rovbus.ratelimit import RateLimiter
from rovbus.transport import Channel, Publisher, SocketStats, bind, echo_forever
from rovbus.transport.gate import GateAuthenticator, PeerGate
from rovbus.transport.server import DRAIN_DEADLINE, RequestLoop
from rovbus.transport.sockets import SocketOptions
from rovbus.transport.subguard import SubscriptionGuard
from rovbus.transport.system_codec import system_codec
from rovbus.wire.canframe import CanFrame, batch_content
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message, error_content, reply_type
from rovbus.wire.serializers import Serializer
from rovbus.wire.topics import batch_topic, can_topic, heartbeat_topic, status_topic

log = logging.getLogger(__name__)

BusFactory = Callable[[], can.BusABC]
#: an extra request handler: the request in, the reply's content out (see ``add_handler``)
Handler = Callable[[Message], Awaitable[dict[str, Any]]]

REPLY_CACHE_SIZE = 256
INPUT_TIMEOUT = 60.0
TOPIC_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class _Question:
    """A question the node asked on stdin: who was asked, and the answer to come."""

    identities: tuple[bytes, ...]  # the asking request's ROUTER identities
    session: str  # the asking request's header session
    answer: asyncio.Future[str]


class NodeDaemon:
    def __init__(
        self,
        system: SystemConfig,
        name: str,
        *,
        bus_factories: dict[str, BusFactory] | None = None,
        drain_deadline: float = 1.0,
    ) -> None:
        self.system = system
        self.config: NodeConfig = system.node(name)
        self.name = name
        #: the system key: the msgpack pub stream (heartbeats, frames, status)
        self.pub_codec = system_codec(system, name)
        #: this start's key: requests, replies, stdin, the JSON iopub, the connection file
        self.codec = self.pub_codec.for_start(name, self.pub_codec.session)
        self.interval = system.heartbeat_interval_of(name)
        self.drain_deadline = drain_deadline
        self._drain_until: float | None = None  # set when serve stops: drain ends then
        self._bus_factories = bus_factories or {}
        self._started = time.monotonic()
        self._stop: asyncio.Event | None = None
        self.state = "starting"
        self.context: zmq.asyncio.Context | None = None
        self.ports: dict[str, CanPort] = {}
        self.rings: dict[str, RingBuffer[CanFrame]] = {}
        self.batchers: dict[str, FrameBatcher] = {}
        self.channels: dict[str, Channel] = {}
        self.publishers: dict[str, Publisher] = {}
        #: the publishers' subscriptions, capped (rovbus.transport.subguard)
        self.guards: dict[str, SubscriptionGuard] = {}
        self.gate = PeerGate(f"node {name}")
        self.auth: GateAuthenticator | None = None
        self.hb_stats = SocketStats()
        self.hb_socket: zmq.asyncio.Socket | None = None
        self.connection_path: Path | None = None
        self._topics: dict[str, dict[tuple[int, bool], str]] = {}
        self._replies: OrderedDict[str, Message] = OrderedDict()
        self._inputs: dict[str, _Question] = {}  # open questions on stdin, by msg_id
        self.execution_count = 0
        self.seq = 0
        self._requests = RequestLoop(log)
        self._tx_log = RateLimiter(1.0)  # transmit on/off log lines, per direction
        self._handlers: dict[str, dict[str, Handler]] = {"shell": {}, "control": {}}

    # -- start-up ---------------------------------------------------------------------

    async def start(self) -> None:
        """Bind every socket and open every bus; raises ``RovbusError`` naming the cause."""
        self._stop = asyncio.Event()
        self.context = zmq.asyncio.Context()
        try:
            self.auth = GateAuthenticator(self.context, self.gate)
            self.auth.start()
            self._bind_sockets(self.context)
            for bus in self.config.buses:
                await self._open_bus(bus.name)
            self._write_connection_file()
        except BaseException:
            await self.aclose()
            raise
        self.state = "ok"
        self._publish_status("starting", None)

    def _bind_sockets(self, ctx: zmq.asyncio.Context) -> None:
        ep = self.config.endpoints
        # receiving sockets refuse oversized frames: the peer is disconnected, no allocation
        receiving = SocketOptions(maxmsgsize=self.system.system.max_message_size)
        caps = SubscriptionPlan(self.system).node(self.name)
        self._publisher(
            ctx, "pub", str(ep.pub), caps, self.pub_codec, Serializer(self.system.system.serializer)
        )
        for name, endpoint in (("shell", ep.shell), ("control", ep.control), ("stdin", ep.stdin)):
            sock = ctx.socket(zmq.ROUTER)
            self.channels[name] = Channel(name, sock, self.codec)
            receiving.apply(sock)
            bind(sock, str(endpoint), name)
        self.hb_socket = ctx.socket(zmq.ROUTER)
        receiving.apply(self.hb_socket)
        bind(self.hb_socket, str(ep.hb), "hb")
        if ep.iopub is not None:
            self._publisher(ctx, "iopub", str(ep.iopub), caps, self.codec, Serializer.JSON)

    def _publisher(
        self,
        ctx: zmq.asyncio.Context,
        name: str,
        endpoint: str,
        caps: SubscriptionCaps,
        codec: Codec,
        serializer: Serializer,
    ) -> None:
        """A publisher on a guarded XPUB: subscriptions capped, sends as a PUB's."""
        guard = SubscriptionGuard(ctx, endpoint, name, caps, self.gate)
        publisher = Publisher(name, guard.socket, codec, serializer)
        guard.on_reset = publisher.use_socket
        self.guards[name] = guard
        self.publishers[name] = publisher

    def _write_connection_file(self) -> None:
        """With a JSON iopub, the Jupyter connection file (mode 0600) of this node."""
        ep = self.config.endpoints
        if ep.iopub is None:
            return
        try:
            info = connection_info_for(
                node_endpoints(self.system, self.name),
                key=self.codec.key,
                signature_scheme=self.codec.signature_scheme,
            )
        except ValueError as exc:
            raise ConfigError(
                str(self.system.source), [f"nodes.{self.name}.endpoints: {exc}"]
            ) from None
        path = self.config.connection_file or default_connection_path(self.name)
        try:
            self.connection_path = write_connection_file(path, info)
        except OSError as exc:
            raise ConfigError(
                str(self.system.source),
                [f"nodes.{self.name}.connection_file: cannot write {path}: {exc.strerror}"],
            ) from None

    async def _open_bus(self, name: str) -> None:
        bus = self.config.bus(name)
        port = CanPort(
            bus,
            functools.partial(self._on_frames, name),
            bus_factory=self._bus_factories.get(name),
            on_state=self._on_bus_state,
        )
        self.ports[name] = port
        self.rings[name] = RingBuffer(256)
        self._topics[name] = {}
        if bus.batch is not None:
            self.batchers[name] = FrameBatcher(
                bus.batch.max_frames,
                bus.batch.max_delay_ms / 1000.0,
                functools.partial(self._publish_batch, name),
            )
        try:
            await port.open()
        except CanError as exc:
            raise CanError(f"node {self.name}: bus {name}: {exc}") from None

    def add_handler(self, msg_type: str, handler: Handler, *, channel: str = "shell") -> None:
        """Answer ``msg_type`` (e.g. ``"sim_fault_request"``) on ``channel`` with ``handler``.

        The handler returns the reply's content (with ``"status": "ok"``); a
        ``RovbusError`` or ``ValueError`` it raises becomes an error reply. The built-in
        requests cannot be replaced."""
        if channel not in self._handlers:
            raise ValueError(f"channel must be shell or control, not {channel!r}")
        if not msg_type.endswith("_request"):
            raise ValueError(f"a request type ends with _request: {msg_type!r}")
        if msg_type in SHELL_REQUESTS or msg_type in CONTROL_REQUESTS:
            raise ValueError(f"{msg_type} is a built-in request")
        self._handlers[channel][msg_type] = handler

    # -- the CAN stream -----------------------------------------------------------------

    def _on_frames(self, bus: str, frames: list[CanFrame]) -> None:
        """Called by the port of ``bus`` on the loop thread with frames received or sent."""
        self.rings[bus].extend(frames)
        batcher = self.batchers.get(bus)
        if batcher is not None:
            batcher.extend(frames)
            return
        publish = self.publishers["pub"].publish
        topic_of = self._can_topic
        for frame in frames:
            publish(topic_of(bus, frame), "can_frame", frame.to_content())

    def _can_topic(self, bus: str, frame: CanFrame) -> str:
        topics = self._topics[bus]
        key = (frame.arbitration_id, frame.is_extended_id)
        topic = topics.get(key)
        if topic is None:
            topic = can_topic(self.name, bus, frame.arbitration_id, frame.is_extended_id)
            if len(topics) < TOPIC_CACHE_LIMIT:
                topics[key] = topic
        return topic

    def _publish_batch(self, bus: str, frames: list[CanFrame]) -> None:
        self.publishers["pub"].publish(
            batch_topic(self.name, bus), "can_batch", batch_content(bus, frames)
        )

    # -- serving ------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask ``serve`` to return (signal handlers and shutdown_request call this)."""
        if self._stop is not None:
            self._stop.set()

    async def serve(self) -> None:
        """Answer requests and publish heartbeats until ``request_stop``; then stop reading
        requests and let those in hand finish within ``drain_deadline`` (``aclose``
        answers the rest)."""
        if self._stop is None or self.hb_socket is None:
            raise RuntimeError("NodeDaemon.serve() before start()")
        async with asyncio.TaskGroup() as tg:
            requests = [
                tg.create_task(self._serve_channel("shell", SHELL_REQUESTS)),
                tg.create_task(self._serve_channel("control", CONTROL_REQUESTS)),
                tg.create_task(self._requests.serve(self.channels["stdin"], self._on_stdin)),
            ]
            others = [
                tg.create_task(echo_forever(self.hb_socket, self.hb_stats, log)),
                tg.create_task(tick_forever(self.interval, self._heartbeat)),
                *(tg.create_task(guard.serve()) for guard in self.guards.values()),
            ]
            await self._stop.wait()
            self.state = "stopping"
            for task in others:
                task.cancel()
            await self._finish_requests(requests)

    async def _finish_requests(self, loops: list[asyncio.Task[None]]) -> None:
        """Stop intake; the requests in hand finish within the drain deadline, which the
        ports' transmit drain in ``aclose`` shares; a handler still running is cancelled."""
        self._drain_until = time.monotonic() + self.drain_deadline
        self._requests.stop()
        for question in self._inputs.values():  # the stdin loop reads no answer any more
            if not question.answer.done():
                question.answer.set_exception(
                    ShuttingDown(
                        f"node {self.name} is shutting down: its question on stdin will not "
                        "be answered, and the command stopped there"
                    )
                )
        _, running = await asyncio.wait(loops, timeout=self.drain_deadline)
        for task in running:
            task.cancel()

    async def _serve_channel(self, name: str, answers: Sequence[str]) -> None:
        channel = self.channels[name]
        await self._requests.serve(channel, lambda request: self._answer(channel, request, answers))

    async def _answer(self, channel: Channel, request: Message, answers: Sequence[str]) -> None:
        cached = self._cached_reply(request)
        if cached is not None:  # a client's retry: answer again, do not act twice
            await channel.send(cached)
            return
        self._publish_status("busy", request)
        try:
            try:
                extra = self._handlers.get(channel.name, {})
                handler = extra.get(request.msg_type)
                if handler is not None:
                    content = await handler(request)
                elif request.msg_type not in answers:
                    raise UnknownRequest(
                        f"{channel.name} channel of node {self.name} does not answer "
                        f"{request.msg_type!r}; it answers {', '.join([*answers, *extra])}"
                    )
                else:
                    content = await self._handle(request)
            except (RovbusError, ValueError) as exc:
                content = error_content(exc)
            reply = self.codec.reply(request, reply_type(request.msg_type), content)
            self._replies[request.msg_id] = reply
            if len(self._replies) > REPLY_CACHE_SIZE:
                self._replies.popitem(last=False)
            await channel.send(reply)
        finally:
            self._publish_status("idle", request)

    async def _handle(self, request: Message) -> dict[str, Any]:
        kind = request.msg_type
        if kind == "kernel_info_request":
            return kernel_info(
                "rovbus",
                f"rovbus {__version__}: node {self.name!r} of group {self.config.group!r}. "
                "Type 'help'.",
            )
        if kind == "node_info_request":
            return {"status": "ok", **self.node_info()}
        if kind == "stats_request":
            return {"status": "ok", **self.stats()}
        if kind == "can_send_request":
            bus, frames = frames_to_send(request.content)
            sent = await self.transmit(bus, frames)
            return {"status": "ok", "bus": bus, "sent": sent}
        if kind == "execute_request":
            return await self._execute(request)
        if kind == "shutdown_request":
            self.request_stop()
            return {"status": "ok", "restart": bool(request.content.get("restart", False))}
        if kind == "interrupt_request":
            dropped = sum(port.drop_queued() for port in self.ports.values())
            return {"status": "ok", "dropped": dropped}
        if kind == "tx_off_request":
            self.set_tx(False, tx_off_reason(request.content.get("reason")), request)
            return {"status": "ok", "tx_enabled": False}
        if kind == "tx_on_request":
            self.set_tx(True, tx_reason(request.content.get("reason"), required=True), request)
            return {"status": "ok", "tx_enabled": True}
        raise UnknownRequest(f"no handler for {kind!r}")  # the tables and this list agree

    # -- execute and stdin --------------------------------------------------------------

    async def _execute(self, request: Message) -> dict[str, Any]:
        self.execution_count += 1
        count = self.execution_count
        code = request.content.get("code", "")
        if not isinstance(code, str):
            raise ValueError("execute_request 'code' must be a string")
        self._side_effect("execute_input", {"code": code, "execution_count": count}, request)
        allow_stdin = bool(request.content.get("allow_stdin", False))

        async def ask(prompt: str) -> str:
            return await self._ask(request, prompt)

        try:
            outcome = await run_command(self, code, ask if allow_stdin else None, request)
        except CommandError as exc:
            failure = error_content(exc)
            self._side_effect(
                "error", {k: failure[k] for k in ("ename", "evalue", "traceback")}, request
            )
            return {**failure, "execution_count": count}
        if outcome.stdout:
            self._side_effect("stream", {"name": "stdout", "text": outcome.stdout}, request)
        if outcome.result is not None:
            self._side_effect(
                "execute_result",
                {"execution_count": count, "data": {"text/plain": outcome.result}, "metadata": {}},
                request,
            )
        return {"status": "ok", "execution_count": count, "user_expressions": {}, "payload": []}

    async def _ask(self, request: Message, prompt: str) -> str:
        stdin = self.channels["stdin"]
        question = self.codec.message(
            "input_request",
            {"prompt": prompt, "password": False},
            parent=request,
            identities=request.identities,
            serializer=request.serializer,
        )
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        asked = _Question(request.identities, request.header["session"], future)
        self._inputs[question.msg_id] = asked
        try:
            await stdin.send(question)
            async with asyncio.timeout(INPUT_TIMEOUT):
                return await future
        except TimeoutError:
            raise CommandError(f"no answer on stdin within {INPUT_TIMEOUT:g} s") from None
        finally:
            self._inputs.pop(question.msg_id, None)

    async def _on_stdin(self, message: Message) -> None:
        """An ``input_reply`` answers the open question it belongs to; the rest is ignored."""
        if message.msg_type != "input_reply":
            return
        future = self._pending_input_for(message)
        value = message.content.get("value")
        if future is not None and not future.done():
            future.set_result(value if isinstance(value, str) else "")

    def _pending_input_for(self, reply: Message) -> asyncio.Future[str] | None:
        """The open question ``reply`` answers, if any. Only the client asked may answer:
        on stdin the ROUTER identity its request had on shell, in the request's session;
        its reply answers the question its parent names or, without a parent (as
        jupyter_client sends it), its open question. Anyone else's reply answers nothing."""
        parent_id = reply.parent_header.get("msg_id")
        session = reply.header.get("session")
        for msg_id, question in self._inputs.items():
            if question.identities != reply.identities or question.session != session:
                continue
            if parent_id is None or parent_id == msg_id:
                return question.answer
        return None

    # -- publishing side effects ----------------------------------------------------------

    def _side_effect(self, msg_type: str, content: dict[str, Any], parent: Message) -> None:
        """A request's side effect: on pub (rovbus tools) and on iopub (Jupyter)."""
        topic = status_topic(self.name)
        for publisher in self.publishers.values():
            publisher.publish(topic, msg_type, content, parent=parent)

    def _publish_status(self, execution_state: str, parent: Message | None) -> None:
        content = {"execution_state": execution_state}
        topic = status_topic(self.name)
        for publisher in self.publishers.values():
            publisher.publish(topic, "status", content, parent=parent)

    def _on_bus_state(self, port: CanPort) -> None:
        """A bus changed state (failed, reopened): say so on ``<node>/status`` at once."""
        pub = self.publishers.get("pub")
        if pub is not None and not pub.socket.closed:
            pub.publish(
                status_topic(self.name),
                "bus_status",
                {"bus": port.name, "state": port.state, "error": port.last_error},
            )

    def _heartbeat(self, seq: int) -> None:
        self.seq = seq
        buses = {name: port.stats() for name, port in self.ports.items()}
        degraded = any(s.state != "ok" for s in buses.values())
        self.publishers["pub"].publish(
            heartbeat_topic(self.name),
            "heartbeat",
            {
                "seq": seq,
                "node": self.name,
                "group": self.config.group,
                "session": self.codec.session,
                "uptime": round(self.uptime, 3),
                "interval": self.interval,
                "state": "degraded" if degraded and self.state == "ok" else self.state,
                "buses": {
                    name: {
                        "state": s.state,
                        "rx": s.rx,
                        "tx": s.tx,
                        "errors": s.errors,
                        "tx_enabled": s.tx_enabled,
                    }
                    for name, s in buses.items()
                },
                "rejected": sum(c.stats.rejected for c in self.channels.values())
                + self.hb_stats.rejected,
                "subscriptions": {
                    "in_force": sum(g.book.in_force for g in self.guards.values()),
                    "over_cap": sum(g.stats.over_cap for g in self.guards.values()),
                    "refused": self.gate.refused,
                },
            },
        )

    # -- what the console and the requests read and change --------------------------------

    @property
    def uptime(self) -> float:
        return time.monotonic() - self._started

    def node_info(self) -> dict[str, Any]:
        ep = self.config.endpoints
        return {
            "node": self.name,
            "group": self.config.group,
            "version": __version__,
            "session": self.codec.session,
            "uptime": round(self.uptime, 3),
            "state": self.state,
            "serializer": self.system.system.serializer,
            "signed": self.codec.signer.enabled,
            "endpoints": {name: str(endpoint) for name, endpoint in ep.items()},
            "buses": [
                {
                    "name": bus.name,
                    "interface": bus.interface,
                    "channel": bus.channel,
                    "bitrate": bus.bitrate,
                    "fd": bus.fd,
                    "state": self.ports[bus.name].state,
                    "tx_enabled": self.ports[bus.name].tx_enabled,
                    "batch": bus.batch.model_dump() if bus.batch else None,
                }
                for bus in self.config.buses
                if bus.name in self.ports
            ],
        }

    def stats(self) -> dict[str, Any]:
        sockets = {name: c.stats.snapshot() for name, c in self.channels.items()}
        sockets.update({name: p.stats.snapshot() for name, p in self.publishers.items()})
        sockets["hb"] = self.hb_stats.snapshot()
        return {
            "node": self.name,
            "uptime": round(self.uptime, 3),
            "buses": {name: port.stats().as_dict() for name, port in self.ports.items()},
            "sockets": sockets,
            "subscriptions": self.subscription_stats(),
        }

    def subscription_stats(self) -> dict[str, Any]:
        """The publishers' subscription counters, and the addresses refused now."""
        guards = {name: guard.snapshot() for name, guard in self.guards.items()}
        return {
            "in_force": sum(g["in_force"] for g in guards.values()),
            "over_cap": sum(g["over_cap"] for g in guards.values()),
            "resets": sum(g["resets"] for g in guards.values()),
            "refused": self.gate.refused,
            "refused_addresses": self.gate.refusing(),
            **guards,
        }

    def status_line(self) -> str:
        buses = ", ".join(f"{name} {port.state}" for name, port in self.ports.items())
        return (
            f"{self.name} ({self.config.group}): {self.state}, up {self.uptime:.0f} s, "
            f"buses: {buses or 'none'}"
        )

    def bus_lines(self) -> list[str]:
        lines = []
        for bus in self.config.buses:
            port = self.ports[bus.name]
            tx = "tx on" if port.tx_enabled else "tx off"
            rate = f", {bus.bitrate} bit/s" if bus.bitrate else ""
            lines.append(f"{bus.name}: {bus.interface}:{bus.channel}{rate}, {port.state}, {tx}")
        return lines

    def recent_frames(self, bus: str, count: int) -> list[CanFrame]:
        if bus not in self.rings:
            raise ValueError(f"node {self.name} has no bus {bus!r}; it has {', '.join(self.rings)}")
        return self.rings[bus].last(count)

    async def transmit(self, bus: str, frames: Sequence[CanFrame]) -> int:
        port = self.ports.get(bus)
        if port is None:
            raise ValueError(
                f"node {self.name} has no bus {bus!r}; it has {', '.join(self.ports) or 'none'}"
            )
        return await port.send(frames)

    def set_tx(self, enabled: bool, reason: str, request: Message) -> None:
        """Turn transmission on or off on every bus, and say so: a log line, and
        ``tx_status`` on ``<node>/status`` parented to ``request``, with the reason and who
        asked (the request's username and session)."""
        for port in self.ports.values():
            if enabled:
                port.enable_tx()
            else:
                port.disable_tx()
        state = "on" if enabled else "off"
        by, session = request.header["username"], request.header["session"]
        held = self._tx_log.allow(state)
        if held is not None:
            log.warning(
                "%s: transmit %s, asked by %.64s (session %.64s): %s (%d more not logged)",
                self.name,
                state,
                by,
                session,
                reason or "no reason given",
                held,
            )
        self.publishers["pub"].publish(
            status_topic(self.name),
            "tx_status",
            {"tx_enabled": enabled, "reason": reason, "by": by, "session": session},
            parent=request,
        )

    # -- shutdown -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Finish pending transmissions within the deadline, answer the requests still
        queued (``ShuttingDown``), then release everything."""
        self.state = "stopping"
        for question in self._inputs.values():
            question.answer.cancel()
        for batcher in self.batchers.values():
            with contextlib.suppress(Exception):
                batcher.flush_now()
            batcher.close()
        ports = list(self.ports.values())
        if ports:
            left = self.drain_deadline
            if self._drain_until is not None:  # what the requests in hand left of it
                left = max(0.0, self._drain_until - time.monotonic())
            await asyncio.gather(*(p.aclose(left) for p in ports))
        if self.publishers.get("pub") is not None and not self.publishers["pub"].socket.closed:
            self._publish_status("stopping", None)
        await self._refuse_queued()
        for channel in self.channels.values():
            channel.close(linger_ms=200)
        for publisher in self.publishers.values():
            publisher.close(linger_ms=200)
        if self.hb_socket is not None and not self.hb_socket.closed:
            self.hb_socket.close(linger=0)
        if self.connection_path is not None:
            self.connection_path.unlink(missing_ok=True)
            self.connection_path = None
        if self.auth is not None:
            self.auth.stop()
            self.auth = None
        if self.context is not None:
            self.context.term()
            self.context = None
        self.state = "stopped"

    async def _refuse_queued(self) -> None:
        """Answer every request still queued on shell and control, and the ones cut short,
        with ``ShuttingDown`` (or the reply already given to a retry); read stdin's queue."""
        until = time.monotonic() + DRAIN_DEADLINE
        who = f"node {self.name}"
        refused = 0
        for name, channel in self.channels.items():
            if channel.socket.closed:
                continue
            if name == "stdin":
                await self._requests.refuse_queued(channel, who, answer=False, until=until)
            else:
                refused += await self._requests.refuse_queued(
                    channel, who, answered=self._cached_reply, until=until
                )
        if refused:
            log.info("%s: answered %d request(s) left at shutdown", self.name, refused)

    def _cached_reply(self, request: Message) -> Message | None:
        """The reply already given to ``request``'s ``msg_id`` (a client's retry), if any."""
        cached = self._replies.get(request.msg_id)
        if cached is None:
            return None
        return self.codec.reply(request, cached.msg_type, cached.content)


__all__ = ["NodeDaemon"]
