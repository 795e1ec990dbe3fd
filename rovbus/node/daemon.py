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
import functools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import can
import zmq
import zmq.asyncio

from rovbus import __version__
from rovbus.can import CanPort
from rovbus.config import NodeConfig, SystemConfig
from rovbus.config.reach import node_endpoints
from rovbus.config.subscriptions import SubscriptionCaps, SubscriptionPlan
from rovbus.daemon.dispatch import Dispatcher, Handler, ReplyCache
from rovbus.daemon.timeline import tick_forever
from rovbus.errors import CanError, ConfigError
from rovbus.node import contents
from rovbus.node.canpub import CanStream
from rovbus.node.connection_file import (
    connection_info_for,
    default_connection_path,
    write_connection_file,
)
from rovbus.node.execute import Executor, SideEffects
from rovbus.node.helm import NodeHelm
from rovbus.node.requests import frames_to_send, origin_of, tx_off_reason, tx_reason
from rovbus.node.txlog import TxLog
from rovbus.ratelimit import RateLimiter
from rovbus.transport import Channel, Publisher, SocketStats, bind, echo_forever
from rovbus.transport.gate import GateAuthenticator, PeerGate
from rovbus.transport.server import DRAIN_DEADLINE, RequestLoop
from rovbus.transport.sockets import SocketOptions
from rovbus.transport.subguard import SubscriptionGuard
from rovbus.transport.system_codec import system_codec
from rovbus.wire.canframe import CanFrame
from rovbus.wire.codec import Codec
from rovbus.wire.contents import NodeInfo, NodeStats
from rovbus.wire.message import Message, kernel_info_content
from rovbus.wire.serializers import Serializer
from rovbus.wire.topics import heartbeat_topic, status_topic

log = logging.getLogger(__name__)

BusFactory = Callable[[], can.BusABC]


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
        self.tx_log = TxLog(name, [bus.name for bus in self.config.buses], self.config.tx_log)
        self.channels: dict[str, Channel] = {}
        self.publishers: dict[str, Publisher] = {}
        #: CAN -> pub (rovbus/node/canpub.py)
        self.can = CanStream(name, self.publishers, self.tx_log)
        #: status and the other side effects of requests, on pub and iopub
        self.effects = SideEffects(name, self.publishers)
        #: execute_request and its questions on stdin (rovbus/node/execute.py)
        self.executor = Executor(self, self.codec, self.channels, self.effects)
        #: the publishers' subscriptions, capped (rovbus.transport.subguard)
        self.guards: dict[str, SubscriptionGuard] = {}
        self.gate = PeerGate(f"node {name}")
        self.auth: GateAuthenticator | None = None
        self.hb_stats = SocketStats()
        self.hb_socket: zmq.asyncio.Socket | None = None
        self.connection_path: Path | None = None
        self.seq = 0
        self._requests = RequestLoop(log)
        self._tx_switch_log = RateLimiter(1.0)  # transmit on/off log lines, per direction
        self.helm = NodeHelm(self.config, {}, self._publish_pub)  # rovbus.node.helm
        #: shell and control: request type -> handler, a worker per client
        self.dispatchers = self._dispatchers()

    def _dispatchers(self) -> dict[str, Dispatcher]:
        """The built-in requests of shell and control (``add_handler`` adds more)."""
        replies = ReplyCache()  # one for both: a msg_id is carried out once
        dispatchers = {
            name: Dispatcher(
                f"node {self.name}",
                self.codec,
                log,
                cache=replies,
                where=f"{name} channel of node {self.name}",
                on_state=self.effects.status,
            )
            for name in ("shell", "control")
        }
        shell, control = dispatchers["shell"], dispatchers["control"]
        for dispatcher in (shell, control):
            dispatcher.add("kernel_info_request", self._kernel_info)
        shell.add("node_info_request", self._node_info)
        shell.add("can_send_request", self._can_send)
        shell.add("stats_request", self._stats)
        shell.add("execute_request", self.executor.execute)
        shell.add("tx_log_request", self._tx_log_request)
        control.add("shutdown_request", self._shutdown)
        control.add("interrupt_request", self._interrupt)
        control.add("tx_off_request", self._tx_off)
        control.add("tx_on_request", self._tx_on)
        return dispatchers

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
        self.helm = NodeHelm(self.config, self.ports, self._publish_pub)
        for msg_type, handler in self.helm.handlers().items():
            self.add_handler(msg_type, handler, channel="control")
        self.helm.start()  # no holder: the failsafe frames go out
        self.state = "ok"
        self.effects.status("starting")

    def _bind_sockets(self, ctx: zmq.asyncio.Context) -> None:
        ep = self.config.endpoints
        # receiving sockets refuse oversized frames: the peer is disconnected, no allocation
        receiving = SocketOptions(maxmsgsize=self.system.system.max_message_size)
        caps = SubscriptionPlan(self.system).node(self.name)
        self._publisher(
            ctx, "pub", str(ep.pub), caps, self.pub_codec, Serializer(self.system.system.serializer)
        )
        # one guard for the three: they verify with one key, and a message taken on one
        # must not be taken again on another
        replay = self.codec.new_replay_guard()
        for name, endpoint in (("shell", ep.shell), ("control", ep.control), ("stdin", ep.stdin)):
            sock = ctx.socket(zmq.ROUTER)
            self.channels[name] = Channel(name, sock, self.codec, replay)
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
            functools.partial(self.can.on_frames, name),
            bus_factory=self._bus_factories.get(name),
            on_state=self.can.on_bus_state,
        )
        self.ports[name] = port
        self.can.add_bus(bus)
        try:
            await port.open()
        except CanError as exc:
            raise type(exc)(f"node {self.name}: bus {name}: {exc}") from None

    def add_handler(self, msg_type: str, handler: Handler, *, channel: str = "shell") -> None:
        """Answer ``msg_type`` (e.g. ``"sim_fault_request"``) on ``channel`` with ``handler``.

        The handler returns the reply's content (with ``"status": "ok"``); a
        ``RovbusError`` or ``ValueError`` it raises becomes an error reply. A type the
        channel answers already (the built-in requests) cannot be replaced."""
        dispatcher = self.dispatchers.get(channel)
        if dispatcher is None:
            raise ValueError(f"channel must be shell or control, not {channel!r}")
        dispatcher.add(msg_type, handler)

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
                *(
                    tg.create_task(d.serve(self._requests, self.channels[name]))
                    for name, d in self.dispatchers.items()
                ),
                tg.create_task(
                    self._requests.serve(self.channels["stdin"], self.executor.on_stdin)
                ),
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
        for dispatcher in self.dispatchers.values():
            dispatcher.stop()
        self.executor.abandon(self.name)  # the stdin loop reads no answer any more
        await asyncio.gather(
            *(d.finish(self.drain_deadline) for d in self.dispatchers.values()),
            asyncio.wait(loops, timeout=self.drain_deadline),
        )
        for task in loops:
            task.cancel()

    # -- the built-in requests (registered in ``_dispatchers``) ----------------------------

    async def _kernel_info(self, request: Message) -> dict[str, Any]:
        return kernel_info_content(
            "rovbus",
            f"rovbus {__version__}: node {self.name!r} of group {self.config.group!r}. "
            "Type 'help'.",
        )

    async def _node_info(self, request: Message) -> dict[str, Any]:
        return {"status": "ok", **self.node_info()}

    async def _stats(self, request: Message) -> dict[str, Any]:
        return {"status": "ok", **self.stats()}

    async def _can_send(self, request: Message) -> dict[str, Any]:
        bus, frames = frames_to_send(request.content)
        sent = await self.transmit(bus, frames, request)
        return {"status": "ok", "bus": bus, "sent": sent}

    async def _tx_log_request(self, request: Message) -> dict[str, Any]:
        return await self.tx_log.answer(request)

    async def _shutdown(self, request: Message) -> dict[str, Any]:
        self.request_stop()
        return {"status": "ok", "restart": bool(request.content.get("restart", False))}

    async def _interrupt(self, request: Message) -> dict[str, Any]:
        dropped = sum(port.drop_queued() for port in self.ports.values())
        return {"status": "ok", "dropped": dropped}

    async def _tx_off(self, request: Message) -> dict[str, Any]:
        await self.set_tx(False, tx_off_reason(request.content.get("reason")), request)
        return {"status": "ok", "tx_enabled": False}

    async def _tx_on(self, request: Message) -> dict[str, Any]:
        await self.set_tx(True, tx_reason(request.content.get("reason"), required=True), request)
        return {"status": "ok", "tx_enabled": True}

    # -- heartbeats ---------------------------------------------------------------------

    def _publish_pub(self, topic: str, msg_type: str, content: dict[str, Any]) -> None:
        self.publishers["pub"].publish(topic, msg_type, content)

    def _heartbeat(self, seq: int) -> None:
        self.seq = seq
        beat = contents.heartbeat(
            seq=seq,
            node=self.name,
            group=self.config.group,
            session=self.codec.session,
            uptime=self.uptime,
            interval=self.interval,
            state=self.state,
            buses={name: port.stats() for name, port in self.ports.items()},
            rejected=sum(c.stats.rejected for c in self.channels.values()) + self.hb_stats.rejected,
            subscriptions={
                "in_force": sum(g.book.in_force for g in self.guards.values()),
                "over_cap": sum(g.stats.over_cap for g in self.guards.values()),
                "refused": self.gate.refused,
            },
            helm=self.helm.heartbeat(),
        )
        self.publishers["pub"].publish(heartbeat_topic(self.name), "heartbeat", dict(beat))

    # -- what the console and the requests read and change --------------------------------

    @property
    def uptime(self) -> float:
        return time.monotonic() - self._started

    def node_info(self) -> NodeInfo:
        return contents.node_info(
            node=self.name,
            group=self.config.group,
            session=self.codec.session,
            uptime=self.uptime,
            state=self.state,
            serializer=self.system.system.serializer,
            signed=self.codec.signer.enabled,
            endpoints=dict(self.config.endpoints.items()),
            buses=[
                (bus, self.ports[bus.name]) for bus in self.config.buses if bus.name in self.ports
            ],
        )

    def stats(self) -> NodeStats:
        sockets = {name: c.stats.snapshot() for name, c in self.channels.items()}
        sockets.update({name: p.stats.snapshot() for name, p in self.publishers.items()})
        sockets["hb"] = self.hb_stats.snapshot()
        return contents.node_stats(
            node=self.name,
            uptime=self.uptime,
            buses={name: port.stats() for name, port in self.ports.items()},
            sockets=sockets,
            subscriptions=self.subscription_stats(),
            dispatch={name: d.stats.snapshot() for name, d in self.dispatchers.items()},
        )

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
        return self.can.recent(bus, count)

    async def transmit(self, bus: str, frames: Sequence[CanFrame], request: Message) -> int:
        """Put ``frames`` on ``bus`` for ``request``'s client: the helm decides who may send
        to helm IDs, and each frame carries the request as its origin (who, which request,
        when). Returns their count once all are on the wire."""
        port = self.ports.get(bus)
        if port is None:
            raise ValueError(
                f"node {self.name} has no bus {bus!r}; it has {', '.join(self.ports) or 'none'}"
            )
        self.helm.admit(bus, frames, request)  # then queued with no await between
        return await port.send(frames, origin_of(request))

    async def set_tx(self, enabled: bool, reason: str, request: Message) -> None:
        """Turn transmission on or off on every bus, and say so: a log line, and
        ``tx_status`` on ``<node>/status`` parented to ``request``, with the reason and who
        asked (the request's username and session). Off: the helms' failsafe frames go out
        first (rovbus.node.helm); on: again where no one holds the helm."""
        if not enabled:
            await self.helm.before_tx_off(request)
        for port in self.ports.values():
            if enabled:
                port.enable_tx()
            else:
                port.disable_tx()
        state = "on" if enabled else "off"
        by, session = request.header["username"], request.header["session"]
        held = self._tx_switch_log.allow(state)
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
        if enabled:
            self.helm.after_tx_on()

    # -- shutdown -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Finish pending transmissions within the deadline, answer the requests still
        queued (``ShuttingDown``), then release everything."""
        self.state = "stopping"
        self.executor.cancel()
        self.can.close()
        self.helm.close()
        ports = list(self.ports.values())
        if ports:
            left = self.drain_deadline
            if self._drain_until is not None:  # what the requests in hand left of it
                left = max(0.0, self._drain_until - time.monotonic())
            await asyncio.gather(*(p.aclose(left) for p in ports))
        if self.publishers.get("pub") is not None and not self.publishers["pub"].socket.closed:
            self.effects.status("stopping")
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
            dispatcher = self.dispatchers.get(name)
            if dispatcher is None:  # stdin, which receives replies
                await self._requests.refuse_queued(channel, who, answer=False, until=until)
                continue
            refused += await dispatcher.refuse_left()
            refused += await self._requests.refuse_queued(
                channel, who, answered=dispatcher.answered, until=until
            )
        if refused:
            log.info("%s: answered %d request(s) left at shutdown", self.name, refused)


__all__ = ["NodeDaemon"]
