"""The forwarder daemon: one group boundary (the tether), run by ``rovbus forwarder NAME``.

Sockets, all bound on the outer side (and CURVE servers there when the system configures
CURVE), and connections to the inner side::

    pub      XPUB    outer side of the pub path (libzmq proxy from an XSUB inside)
    request  ROUTER  requests to nodes behind, by name; replies routed back
    control  ROUTER  the forwarder's own requests: kernel_info, node_info, stats,
                     pause, resume, shutdown

``start`` binds and connects everything and starts the proxy thread (and raises, before
anything is announced, if a port is taken or a key file is bad); ``serve`` routes requests,
keeps the last-value cache, answers control requests and publishes ``<name>/hb`` until it
is stopped, then stops reading requests and lets those in hand finish (replies to forwarded
requests still come back) within ``drain_deadline``; ``aclose`` answers what is still
queued with ``ShuttingDown`` error replies, stops the proxy and releases everything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import zmq
import zmq.asyncio

from rovbus import __version__
from rovbus.config import ForwarderConfig, SystemConfig
from rovbus.config.subscriptions import SubscriptionPlan
from rovbus.daemon.dispatch import Dispatcher, ReplyCache
from rovbus.daemon.timeline import tick_forever
from rovbus.errors import RovbusError
from rovbus.forwarder import contents
from rovbus.forwarder.lvc import LastValueCache
from rovbus.forwarder.pubpath import ProxyStats, PubPath
from rovbus.forwarder.routing import DEFAULT_TIMEOUT, RequestRouter
from rovbus.forwarder.topology import Topology, topology_of
from rovbus.transport import Channel, bind
from rovbus.transport.curve import (
    CurveAuthenticator,
    allowed_client_keys,
    client_setup,
    server_setup,
)
from rovbus.transport.gate import GateAuthenticator, PeerGate
from rovbus.transport.server import DRAIN_DEADLINE, RequestLoop
from rovbus.transport.sockets import SocketOptions
from rovbus.transport.subguard import ProxyGuard
from rovbus.transport.system_codec import system_codec
from rovbus.wire.contents import ForwarderInfo, ForwarderStats
from rovbus.wire.message import Message, kernel_info_content
from rovbus.wire.serializers import Serializer
from rovbus.wire.topics import heartbeat_topic

__all__ = ["ForwarderDaemon"]

log = logging.getLogger(__name__)

#: seconds between two looks at libzmq's count of the pub's subscriptions
WATCH = 0.02


class ForwarderDaemon:
    def __init__(
        self,
        system: SystemConfig,
        name: str,
        *,
        request_timeout: float = DEFAULT_TIMEOUT,
        drain_deadline: float = 0.5,
    ) -> None:
        self.system = system
        self.config: ForwarderConfig = system.forwarder(name)
        self.name = name
        self.topology: Topology = topology_of(system, name)
        self.request_timeout = request_timeout
        self.drain_deadline = drain_deadline
        security = system.security
        self.serializer = Serializer(system.system.serializer)
        #: the system key: requests by name (each verified with its node's start key),
        #: what the last-value cache verifies, and our own heartbeats; each of these
        #: receivers keeps its own replay guard
        self.pub_codec = system_codec(system, name)
        #: this start's key: the control requests and their replies
        self.codec = self.pub_codec.for_start(name, self.pub_codec.session)
        self.max_age = security.max_age if security and security.max_age else None
        self.interval = system.system.heartbeat_interval
        self.state = "starting"
        self._started = time.monotonic()
        self._stop: asyncio.Event | None = None
        self.context: zmq.asyncio.Context | None = None
        self.auth: CurveAuthenticator | None = None
        #: addresses refused at the pub (by ``auth``, or without CURVE by ``_gate_auth``)
        self.gate = PeerGate(f"forwarder {name}")
        self._gate_auth: GateAuthenticator | None = None
        self.guard: ProxyGuard | None = None
        self._reset_due = asyncio.Event()
        self.pubpath: PubPath | None = None
        self.lvc: LastValueCache | None = None
        self.router: RequestRouter | None = None
        self.control: Channel | None = None
        self.last_proxy_stats = ProxyStats()
        self.seq = 0
        self._requests = RequestLoop(log)
        #: the control channel's requests
        self.dispatcher = Dispatcher(
            f"forwarder {name}",
            self.codec,
            log,
            cache=ReplyCache(),
            hint=" (requests for nodes go to its request endpoint with [node, channel] "
            "routing frames)",
        )
        for msg_type, handler in (
            ("kernel_info_request", self._kernel_info),
            ("node_info_request", self._node_info),
            ("stats_request", self._stats),
            ("pause_request", self._pause),
            ("resume_request", self._resume),
            ("shutdown_request", self._shutdown),
        ):
            self.dispatcher.add(msg_type, handler)

    # -- start-up ---------------------------------------------------------------------

    async def start(self) -> None:
        """Bind, connect, start the proxy; raises ``RovbusError`` naming the cause."""
        self._stop = asyncio.Event()
        self.context = ctx = zmq.asyncio.Context()
        try:
            outer = server_setup(self.system)
            inner = client_setup(self.system)
            if outer is not None:
                self.auth = CurveAuthenticator(
                    ctx, allowed_client_keys(self.system), f"forwarder {self.name}", self.gate
                )
                self.auth.start()
                outer = self.auth.watching(outer)
            else:
                self._gate_auth = GateAuthenticator(ctx, self.gate)
                self._gate_auth.start()
            ep = self.config.endpoints
            self.lvc = LastValueCache(
                ctx, self.name, self.pub_codec, self.serializer, max_age=self.max_age
            )
            caps = SubscriptionPlan(self.system).forwarder(self.name)
            self.pubpath = PubPath(ctx, self.name, str(ep.pub), caps, outer_setup=outer)
            self.pubpath.connect_inner([self.lvc.endpoint], self.topology.sources, inner)
            self.guard = ProxyGuard(
                f"forwarder {self.name}",
                caps,
                self.gate,
                in_force=lambda: len(self.lvc.prefixes) if self.lvc else 0,
                counted=self.pubpath.topics_count,
                port=ep.pub.port if ep.pub.transport == "tcp" else None,
            )
            self.lvc.on_subscribe = self._check_subscriptions
            self.lvc.watch(self.topology.cached_topics(), self.topology.sources, inner)
            request = self._router_socket(ctx, str(ep.request), "request", outer)
            self.router = RequestRouter(
                ctx,
                self.name,
                self.topology,
                self.pub_codec,
                request,
                timeout=self.request_timeout,
                inner_setup=inner,
                session_of=self.lvc.sessions.get,
            )
            self.router.open()
            self.control = Channel(
                "control", self._router_socket(ctx, str(ep.control), "control", outer), self.codec
            )
            self.pubpath.start()
        except BaseException:
            await self.aclose()
            raise
        self.state = "ok"

    def _router_socket(
        self, ctx: zmq.asyncio.Context, endpoint: str, what: str, setup: Any
    ) -> zmq.asyncio.Socket:
        sock = ctx.socket(zmq.ROUTER)
        try:
            # what the outside sends is bounded, as at a node: [system] max_message_size
            SocketOptions(maxmsgsize=self.system.system.max_message_size).apply(sock)
            if setup is not None:
                setup(sock)
            bind(sock, endpoint, what)
        except BaseException:
            sock.close(linger=0)
            raise
        return sock

    # -- serving ------------------------------------------------------------------------

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    async def serve(self) -> None:
        """Route, cache, answer and publish heartbeats until ``request_stop``."""
        if self._stop is None or self.router is None or self.lvc is None:
            raise RuntimeError("ForwarderDaemon.serve() before start()")
        async with asyncio.TaskGroup() as tg:
            routing = tg.create_task(self.router.serve())
            control = tg.create_task(self._serve_control())
            others = [
                tg.create_task(self.lvc.collect_forever()),
                tg.create_task(self.lvc.serve_subscriptions()),
                tg.create_task(tick_forever(self.interval, self._heartbeat)),
                tg.create_task(self._reset_forever()),
                tg.create_task(self._watch_subscriptions()),
            ]
            await self._stop.wait()
            self.state = "stopping"
            for task in others:
                task.cancel()
            # stop intake; the control request in hand and the replies to requests
            # forwarded get the drain deadline; aclose answers what is left
            self._requests.stop()
            self.dispatcher.stop()
            self.router.stop_intake()
            until = time.monotonic() + self.drain_deadline
            await self.dispatcher.finish(self.drain_deadline)
            await self.router.settle(max(0.0, until - time.monotonic()))
            routing.cancel()
            control.cancel()

    # -- subscriptions: capped (rovbus.transport.subguard) ----------------------------------

    def _check_subscriptions(self, *, settle: bool = False) -> None:
        """After each subscription from outside, and at each heartbeat (``settle``): ask for
        a reset of the pub path if the guard finds a count over the cap (unless one is
        under way)."""
        guard = self.guard
        if guard is None or self._reset_due.is_set():
            return
        if guard.over() or (settle and guard.settle()):
            self._reset_due.set()

    async def _watch_subscriptions(self) -> None:
        """libzmq's count of the pub's prefixes grows in the proxy thread, ahead of what
        the cache sees, and says nothing when it does: read it every ``WATCH`` s, so that
        a burst is cut short before it reaches the nodes in full."""
        while True:
            await asyncio.sleep(WATCH)
            self._check_subscriptions()

    async def _reset_forever(self) -> None:
        while True:
            await self._reset_due.wait()
            try:
                await self._reset_pub_path()
            except (RovbusError, zmq.ZMQError) as exc:
                log.error("%s: resetting the pub path failed: %s", self.name, exc)
            finally:
                self._reset_due.clear()

    async def _reset_pub_path(self) -> None:
        """Close the pub path's sockets (libzmq frees every subscription, outside and at
        the inner publishers), let the cache see the XSUB leave, open them again."""
        if self.pubpath is None or self.lvc is None or self.guard is None:
            return
        await self.pubpath.close_sockets()
        await self.lvc.drained(timeout=2.0)
        await self.pubpath.reopen()
        self.guard.reset_done()

    async def _serve_control(self) -> None:
        if self.control is None:
            raise RuntimeError("ForwarderDaemon.serve() before start()")
        await self.dispatcher.serve(self._requests, self.control)

    # -- the control requests (registered in ``__init__``) ---------------------------------

    async def _kernel_info(self, request: Message) -> dict[str, Any]:
        return self.kernel_info()

    async def _node_info(self, request: Message) -> dict[str, Any]:
        return {"status": "ok", **(await self.node_info())}

    async def _stats(self, request: Message) -> dict[str, Any]:
        return {"status": "ok", **(await self.stats())}

    async def _pause(self, request: Message) -> dict[str, Any]:
        if self.pubpath is not None:
            await self.pubpath.pause()
        return {"status": "ok", "paused": True}

    async def _resume(self, request: Message) -> dict[str, Any]:
        if self.pubpath is not None:
            await self.pubpath.resume()
        return {"status": "ok", "paused": False}

    async def _shutdown(self, request: Message) -> dict[str, Any]:
        self.request_stop()
        return {"status": "ok", "restart": bool(request.content.get("restart", False))}

    async def _heartbeat(self, seq: int) -> None:
        assert self.lvc is not None
        self.seq = seq
        self.lvc.take_subscriptions()  # any a send of the cache's took the wake-up of
        self._check_subscriptions(settle=True)
        if self.guard is not None:
            self.guard.trim_if_due()
        proxy = await self._proxy_stats()
        beat = contents.heartbeat(
            seq=seq,
            name=self.name,
            outer=self.config.outer,
            inner=self.config.inner,
            session=self.codec.session,
            uptime=self.uptime,
            interval=self.interval,
            state=self._health(),
            nodes=self.topology.nodes,
            pub={**proxy.as_dict(), "subscriptions": len(self.lvc.prefixes)},
            requests=self.router.stats.snapshot() if self.router else {},
            rejected=self._rejected_count(),
            subscriptions={
                "in_force": len(self.lvc.prefixes),
                "over_cap": self.guard.stats.over_cap if self.guard else 0,
                "refused": self.gate.refused,
            },
        )
        self.lvc.publish(heartbeat_topic(self.name), "heartbeat", dict(beat))

    async def _proxy_stats(self) -> ProxyStats:
        if self.pubpath is not None and self.pubpath.running:
            try:
                self.last_proxy_stats = await self.pubpath.statistics()
            except RovbusError as exc:
                log.warning("%s", exc)
        return self.last_proxy_stats

    def _health(self) -> str:
        if self.state != "ok":
            return self.state
        if self.pubpath is None or not self.pubpath.running:
            return "degraded"
        return "paused" if self.pubpath.paused else "ok"

    def _rejected_count(self) -> int:
        count = self.router.stats.rejected if self.router else 0
        count += self.control.stats.rejected if self.control else 0
        return count + (self.auth.rejected if self.auth else 0)

    # -- what the requests read -------------------------------------------------------------

    @property
    def uptime(self) -> float:
        return time.monotonic() - self._started

    def kernel_info(self) -> dict[str, Any]:
        return kernel_info_content(
            "rovbus-forwarder",
            f"rovbus {__version__}: forwarder {self.name!r} from group "
            f"{self.config.inner!r} to {self.config.outer!r}",
        )

    async def node_info(self) -> ForwarderInfo:
        return contents.forwarder_info(
            config=self.config,
            topology=self.topology,
            session=self.codec.session,
            uptime=self.uptime,
            state=self._health(),
            signed=self.codec.signer.enabled,
            curve=self.auth is not None,
            request_timeout=self.request_timeout,
            serializer=self.serializer.value,
            counters=await self.stats(),
        )

    async def stats(self) -> ForwarderStats:
        proxy = await self._proxy_stats()
        lvc, pubpath = self.lvc, self.pubpath
        return contents.forwarder_stats(
            name=self.name,
            uptime=self.uptime,
            proxy=proxy,
            paused=bool(pubpath and pubpath.paused),
            running=bool(pubpath and pubpath.running),
            prefixes=lvc.prefixes if lvc else (),
            lvc={**lvc.stats(), "topics": lvc.topics()} if lvc else {"topics": []},
            requests=self.router.stats.snapshot() if self.router else {},
            control=self.control.stats.snapshot() if self.control else {},
            guard=self.guard.snapshot() if self.guard else {},
            refused=self.gate.refused,
            refused_addresses=self.gate.refusing(),
            dispatch={"control": self.dispatcher.stats.snapshot()},
            curve=self.auth.stats() if self.auth is not None else None,
        )

    def status_line(self) -> str:
        subs = len(self.lvc.prefixes) if self.lvc else 0
        return (
            f"{self.name} ({self.config.inner} -> {self.config.outer}): {self._health()}, "
            f"up {self.uptime:.0f} s, {len(self.topology.targets)} node(s) behind, "
            f"{subs} subscription(s)"
        )

    # -- shutdown -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop the proxy thread, close every socket, stop ZAP, terminate the context."""
        self.state = "stopping"
        if self.lvc is not None and not self.lvc.xpub.closed and self.pubpath is not None:
            # a last heartbeat saying so, for whoever is subscribed (best effort)
            beat = contents.last_heartbeat(
                seq=self.seq + 1,
                name=self.name,
                outer=self.config.outer,
                session=self.codec.session,
                uptime=self.uptime,
                interval=self.interval,
            )
            self.lvc.publish(heartbeat_topic(self.name), "heartbeat", dict(beat))
        if self.pubpath is not None:
            await self.pubpath.stop()
            if self.pubpath.running:
                log.error("%s: the proxy thread did not stop", self.name)
            else:
                self.pubpath.close()
            self.pubpath = None
        await self._refuse_queued()
        if self.router is not None:
            self.router.close()
            self.router.outer.close(linger=200)
            self.router = None
        if self.control is not None:
            self.control.close(linger_ms=200)
            self.control = None
        if self.lvc is not None:
            self.lvc.close()
            self.lvc = None
        if self.auth is not None:
            self.auth.stop()
            self.auth = None
        if self._gate_auth is not None:
            self._gate_auth.stop()
            self._gate_auth = None
        if self.context is not None:
            self.context.term()
            self.context = None
        self.state = "stopped"

    async def _refuse_queued(self) -> None:
        """Answer the requests still queued (or waiting for a node) with ``ShuttingDown``."""
        until = time.monotonic() + DRAIN_DEADLINE
        who = f"forwarder {self.name}"
        refused = 0
        if self.router is not None:
            refused += await self.router.refuse_queued(who, until=until)
        if self.control is not None and not self.control.socket.closed:
            refused += await self.dispatcher.refuse_left()
            refused += await self._requests.refuse_queued(
                self.control, who, answered=self.dispatcher.answered, until=until
            )
        if refused:
            log.info("%s: answered %d request(s) left at shutdown", self.name, refused)
