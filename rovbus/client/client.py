"""The asyncio client: subscribe, request, transmit, and the node table.

A :class:`Client` is a member of one group of the system file (see
:mod:`rovbus.client.routes`) or talks to endpoints given by hand. It verifies pub traffic
with the system's key, and signs each request with the start key of the node it goes to
(derived from the system key and the session of the node's latest heartbeat, which it
follows from its first request on; docs/protocol.md, Signing). It applies CURVE client
keys to sockets that reach a forwarder's outer side when the system configures CURVE, and
opens sockets lazily: constructing a client does no I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import zmq.asyncio

from rovbus.client.helm import Helm
from rovbus.client.nodetable import NodeRow, NodeTable
from rovbus.client.routes import Routes, explicit_routes, routes_for_group, routes_for_host
from rovbus.client.subscription import Subscription
from rovbus.closing import AsyncClosing
from rovbus.errors import ConfigError, EnvelopeError, RequestFailed, RequestTimeout
from rovbus.transport.curve import client_setup
from rovbus.transport.requester import Requester, SocketSetup
from rovbus.transport.system_codec import system_codec
from rovbus.wire.canframe import CanFrame
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message

if TYPE_CHECKING:
    from rovbus.config import SystemConfig

__all__ = ["Client", "curve_setup_for", "request_type"]


def request_type(name: str) -> str:
    """``node_info`` or ``node-info`` -> ``node_info_request``; full names pass through."""
    name = name.replace("-", "_")
    return name if name.endswith("_request") else f"{name}_request"


def curve_setup_for(system: SystemConfig) -> SocketSetup | None:
    """The CURVE client setup of ``system`` (None when CURVE is off).

    Loads the keys only when the system configures CURVE (``client_setup``).
    """
    if not system.curve:
        return None
    return client_setup(system)


def _username() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in a container
        return "operator"


class Client(AsyncClosing):
    """An operator's connection to the bus. ``async with Client.from_system(...) as c:``."""

    def __init__(
        self,
        routes: Routes,
        codec: Codec,
        *,
        system: SystemConfig | None = None,
        curve_setup: SocketSetup | None = None,
        heartbeat_interval: float = 1.0,
        dead_after: int = 3,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        self.routes = routes
        self.codec = codec
        self.system = system
        self.curve_setup = curve_setup
        self.heartbeat_interval = heartbeat_interval
        self._own_context = context is None
        self.context = context if context is not None else zmq.asyncio.Context()
        expected: list[tuple[str, str]] = []
        if system is not None:
            expected = [(n, r.group) for n, r in routes.nodes.items()]
        self.table = NodeTable(dead_after, expected)
        self._requesters: dict[str, Requester] = {}
        self._subscriptions: set[Subscription] = set()
        #: heartbeat watchers: "" for every node (``watch_nodes``), else one node's name
        self._watches: dict[str, asyncio.Task[None]] = {}
        self._heard = asyncio.Event()  # set (and replaced) at every heartbeat
        self._starts: dict[str, tuple[str, Codec]] = {}  # node -> (session, its codec)
        self.closed = False

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_system(
        cls,
        system: SystemConfig | str | Path,
        group: str | None = None,
        *,
        username: str | None = None,
        host: str | None = None,
        pub: Sequence[str] = (),
        request: str | None = None,
        routed: bool = False,
    ) -> Client:
        """A client that is a member of ``group`` (default: :func:`default_group`), or of
        every group of ``host`` (a program on that computer; not with ``group``).

        ``pub``/``request`` replace the routes by endpoints
        given by hand, keeping the system's keys. Raises ConfigError."""
        if isinstance(system, str | Path):
            from rovbus.config import load_system

            system = load_system(system)
        cfg = system
        if group is not None and host is not None:
            raise ConfigError(
                str(cfg.source), ["a client stands in a group or on a host, not both"]
            )
        if pub or request:
            routes = explicit_routes(list(pub), request, routed=routed)
        elif host is not None:
            routes = routes_for_host(cfg, host)
        else:
            routes = routes_for_group(cfg, group)
        codec = system_codec(cfg, username or _username())
        intervals = [cfg.heartbeat_interval_of(n) for n in routes.nodes] or [
            cfg.system.heartbeat_interval
        ]
        return cls(
            routes,
            codec,
            system=cfg,
            curve_setup=curve_setup_for(cfg),
            heartbeat_interval=max(intervals),
            dead_after=cfg.system.dead_after,
        )

    @classmethod
    def from_endpoints(
        cls,
        pub: Sequence[str] = (),
        request: str | None = None,
        *,
        routed: bool = False,
        key: bytes = b"",
        signature_scheme: str = "hmac-sha256",
        username: str | None = None,
        heartbeat_interval: float = 1.0,
    ) -> Client:
        """A client of endpoints given by hand, without a system file: every ``pub``
        endpoint is subscribed; every request goes to ``request`` (a node's shell or
        control endpoint, or with ``routed`` a forwarder's request endpoint)."""
        codec = Codec(key, signature_scheme, username=username or _username())
        return cls(
            explicit_routes(list(pub), request, routed=routed),
            codec,
            heartbeat_interval=heartbeat_interval,
        )

    # -- subscribing --------------------------------------------------------------------

    def subscribe(self, prefixes: Iterable[str] = ("",)) -> Subscription:
        """Subscribe to topics starting with any of ``prefixes`` ("" : everything).

        Returns a :class:`Subscription`: an async iterator of messages and an async
        context manager; ``await sub.ready()`` waits until it has joined."""
        self._check_open()
        sub = Subscription(
            self.context,
            self.routes,
            self.codec,
            prefixes,
            curve_setup=self.curve_setup,
            heartbeat_interval=self.heartbeat_interval,
            on_heartbeat=self._heartbeat,
            on_close=self._subscriptions.discard,
        )
        self._subscriptions.add(sub)
        return sub

    # -- requests -----------------------------------------------------------------------

    def _requester(self, endpoint: str, via: str | None) -> Requester:
        req = self._requesters.get(endpoint)
        if req is None:
            setup = self.curve_setup if via is not None else None
            req = Requester(self.context, endpoint, self.codec, setup=setup, name="request")
            self._requesters[endpoint] = req
        return req

    async def request(
        self,
        node: str,
        msg_type: str,
        content: dict[str, Any] | None = None,
        *,
        channel: str = "shell",
        timeout: float = 3.0,
        retries: int = 2,
        check: bool = True,
    ) -> Message:
        """Send a request to ``node`` and return its reply.

        ``msg_type`` may leave out ``_request``. A lost reply is retried ``retries``
        times on a fresh socket with the same msg_id (the node answers a repeat from its
        cache, without acting twice). Raises RequestTimeout after the last attempt,
        RequestFailed for an error reply (unless ``check`` is false: then the error reply
        is returned), ConfigError for a node that is not reachable."""
        self._check_open()
        route = self.routes.route(node)
        endpoint = route.endpoint(channel)
        codec = await self.codec_for(node, timeout * (retries + 1))
        message = codec.message(
            request_type(msg_type), content or {}, identities=route.identities(channel)
        )
        reply = await self._requester(endpoint, route.via).request(
            message, timeout, retries, codec=lambda: self._start_codec(node) or codec
        )
        if check and reply.content.get("status") == "error":
            raise RequestFailed(node, reply)
        return reply

    async def send_frames(
        self,
        node: str,
        bus: str,
        frames: Sequence[CanFrame | str | dict[str, Any]],
        *,
        timeout: float = 3.0,
        retries: int = 2,
    ) -> int:
        """Transmit ``frames`` (CanFrame, cansend text or content maps) on ``bus`` of
        ``node``, in order; returns how many went on the wire."""
        items: list[str | dict[str, Any]] = []
        for frame in frames:
            if isinstance(frame, CanFrame):
                content = frame.to_content()
                content["bus"] = bus
                content["dir"] = "tx"
                content.pop("origin", None)  # the node writes the origin of what it sends
                items.append(content)
            else:
                items.append(frame)
        reply = await self.request(
            node,
            "can_send_request",
            {"bus": bus, "frames": items},
            timeout=timeout,
            retries=retries,
        )
        sent = reply.content.get("sent", 0)
        return sent if isinstance(sent, int) else 0

    async def tx_log(
        self,
        node: str,
        bus: str | None = None,
        *,
        limit: int | None = None,
        timeout: float = 3.0,
        retries: int = 2,
    ) -> list[CanFrame]:
        """The last frames ``node`` transmitted (of ``bus``, or every bus; the newest
        ``limit``), oldest first, each with its ``origin``: who asked, by which request,
        when (docs/protocol.md, ``tx_log_request``)."""
        content: dict[str, Any] = {}
        if bus is not None:
            content["bus"] = bus
        if limit is not None:
            content["limit"] = limit
        reply = await self.request(
            node, "tx_log_request", content, timeout=timeout, retries=retries
        )
        frames = reply.content.get("frames")
        if not isinstance(frames, list):
            raise EnvelopeError(f"tx_log_reply of node {node}: 'frames' is not a list")
        return [CanFrame.from_content(frame) for frame in frames]

    def helm(
        self, node: str, bus: str | None = None, *, force: bool = False, reason: str = ""
    ) -> Helm:
        """The helm of ``node`` (its every helm bus, or ``bus``), for ``async with``:
        taken on entering, released on leaving (rovbus.client.helm)."""
        self._check_open()
        return Helm(self, node, bus, force=force, reason=reason)

    async def codec_for(self, node: str, timeout: float) -> Codec:
        """The codec for requests to ``node``: signing with the key of its current start,
        which its heartbeats announce (this waits up to ``timeout`` seconds for the first,
        and follows them from then on); this client's own codec on an unsigned system.
        Raises RequestTimeout when no heartbeat of ``node`` came, ConfigError when there is
        no pub endpoint to hear one on."""
        codec = self._start_codec(node)
        if codec is not None:
            return codec
        if not self.routes.sources:
            raise ConfigError(
                self.routes.source,
                [
                    f"node {node!r}: a request on a signed system carries the key of the "
                    "node's current start, which its heartbeats announce, and there is no "
                    "pub endpoint to hear them on (give one)"
                ],
            )
        if node in self.routes.nodes:
            self.watch_nodes()
        else:
            self._follow(node, [f"{node}/hb"])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (codec := self._start_codec(node)) is None:
            heard = self._heard
            left = deadline - loop.time()
            if left <= 0:
                raise RequestTimeout(
                    f"no heartbeat from node {node!r} within {timeout:g} s: a request on a "
                    "signed system carries the key of the node's current start, which its "
                    "heartbeats announce"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(heard.wait(), left)
        return codec

    def _start_codec(self, node: str) -> Codec | None:
        """The codec of ``node``'s start its latest heartbeat announced (``None`` before
        one was heard); this client's own codec on an unsigned system."""
        if not self.codec.signer.enabled:
            return self.codec
        life = self.table.tracker.nodes.get(node)
        if life is None:
            return None
        known = self._starts.get(node)
        if known is None or known[0] != life.session:
            known = self._starts[node] = (life.session, self.codec.for_start(node, life.session))
        return known[1]

    # -- the node table -----------------------------------------------------------------

    def _heartbeat(self, message: Message) -> None:
        self.table.observe(message, time.monotonic())
        self._heard.set()
        self._heard = asyncio.Event()

    async def _watch_heartbeats(self, sub: Subscription) -> None:
        async with sub:
            async for _ in sub:
                pass  # Subscription feeds every heartbeat to the table

    def _follow(self, what: str, prefixes: list[str]) -> None:
        if what not in self._watches:
            sub = self.subscribe(prefixes)
            self._watches[what] = asyncio.create_task(self._watch_heartbeats(sub))

    def watch_nodes(self) -> None:
        """Start following every node's heartbeats in the background (idempotent)."""
        self._check_open()
        # endpoints by hand: the node names are unknown, so everything, filtered
        self._follow("", [f"{n}/hb" for n in self.routes.nodes] or [""])

    async def node_table(self, wait: float | None = None) -> list[NodeRow]:
        """The node table from heartbeats: one row per node heard or named by the system.

        The first call starts following heartbeats and waits up to ``wait`` seconds
        (default: two heartbeat intervals and a half) until every reachable node has been
        heard twice (so its frame rates are known); later calls return at once unless
        ``wait`` is given."""
        first = "" not in self._watches
        self.watch_nodes()
        if wait is None:
            wait = 2.5 * self.heartbeat_interval if first else 0.0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        expected = set(self.routes.nodes)
        while loop.time() < deadline:
            known = self.table.rates_known()
            if expected and known >= expected:
                break
            await asyncio.sleep(0.05)
        return self.table.rows(time.monotonic())

    # -- closing ------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("the client is closed")

    async def aclose(self) -> None:
        """Close every socket and the context (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for watch in self._watches.values():
            watch.cancel()
        await asyncio.gather(*self._watches.values(), return_exceptions=True)
        self._watches.clear()
        for sub in list(self._subscriptions):
            sub.close()
        for req in self._requesters.values():
            req.close()
        self._requesters.clear()
        await asyncio.sleep(0)
        if self._own_context:
            self.context.destroy(linger=0)
