"""A blocking wrapper of :class:`~rovbus.client.Client` for scripts without asyncio.

The ``BlockingClient`` runs its own event loop in a daemon thread; each call submits a
coroutine to it and waits for the result, so every socket lives on that one thread (as
ZeroMQ wants) and the heartbeat watcher keeps running between calls. ``close()`` (or the
``with`` block) closes the client and stops the thread.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rovbus.client.client import Client
from rovbus.client.helm import Frames, Helm
from rovbus.client.nodetable import NodeRow
from rovbus.client.subscription import Subscription
from rovbus.closing import Closing
from rovbus.transport.stats import SocketStats
from rovbus.wire.canframe import CanFrame
from rovbus.wire.message import Message

if TYPE_CHECKING:
    from rovbus.config import SystemConfig

__all__ = ["BlockingClient", "BlockingSubscription"]

T = TypeVar("T")


class _LoopThread:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="rovbus-client")
        self.thread.daemon = True
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def stop(self) -> None:
        if self.loop.is_running():
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        if not self.loop.is_running():
            self.loop.close()


class BlockingSubscription(Closing):
    """A subscription read by blocking calls: ``for msg in sub`` or ``sub.recv(timeout)``."""

    def __init__(self, owner: BlockingClient, sub: Subscription) -> None:
        self._owner = owner
        self.subscription = sub

    def ready(self, timeout: float | None = None) -> set[str]:
        return self._owner._run(self.subscription.ready(timeout))

    def recv(self, timeout: float | None = None) -> Message:
        """The next matching message; ``TimeoutError`` after ``timeout`` seconds."""
        return self._owner._run(asyncio.wait_for(self.subscription.recv(), timeout))

    def __iter__(self) -> Iterator[Message]:
        while not self.subscription.closed:
            yield self.recv()

    @property
    def stats(self) -> SocketStats:
        """The subscription's counters, ``missed`` included (see ``Subscription.stats``)."""
        return self._read(lambda: self.subscription.stats)

    def missed_topics(self) -> dict[str, int]:
        """Messages missed per topic (see ``Subscription.missed_topics``)."""
        return self._read(self.subscription.missed_topics)

    def _read(self, read: Callable[[], T]) -> T:
        """``read()`` on the loop thread, which updates the counters (directly once closed)."""
        if self.subscription.closed or self._owner.closed:
            return read()

        async def on_loop() -> T:
            return read()

        return self._owner._run(on_loop())

    def close(self) -> None:
        if not self.subscription.closed and not self._owner.closed:
            self._owner._run(self.subscription.aclose())


class BlockingHelm(Closing):
    """The blocking form of :class:`~rovbus.client.helm.Helm`: ``with`` takes the helm
    and gives it back (unless it was lost)."""

    def __init__(self, owner: BlockingClient, helm: Helm) -> None:
        self._owner = owner
        self.helm = helm

    def take(self) -> BlockingHelm:
        self._owner._run(self.helm.take())
        return self

    def send(self, bus: str, frames: Frames) -> int:
        return self._owner._run(self.helm.send(bus, frames))

    def renew(self) -> None:
        self._owner._run(self.helm.renew())

    def release(self) -> None:
        self._owner._run(self.helm.release())

    def close(self) -> None:
        self._owner._run(self.helm.aclose())

    def __enter__(self) -> BlockingHelm:
        return self.take()


class BlockingClient(Closing):
    """The blocking form of :class:`Client`; same arguments, same methods, no ``await``."""

    def __init__(self, make: Any) -> None:
        """``make`` builds the async client (called on the loop thread)."""
        self._thread = _LoopThread()
        self.closed = False

        async def build() -> Client:
            client: Client = make()
            return client

        self.client = self._thread.run(build())

    @classmethod
    def from_system(
        cls, system: SystemConfig | str | Path, group: str | None = None, **kwargs: Any
    ) -> BlockingClient:
        return cls(lambda: Client.from_system(system, group, **kwargs))

    @classmethod
    def from_endpoints(
        cls, pub: Sequence[str] = (), request: str | None = None, **kwargs: Any
    ) -> BlockingClient:
        return cls(lambda: Client.from_endpoints(pub, request, **kwargs))

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if self.closed:
            coro.close()
            raise RuntimeError("the client is closed")
        return self._thread.run(coro)

    def subscribe(self, prefixes: Iterable[str] = ("",)) -> BlockingSubscription:
        async def make() -> Subscription:
            return self.client.subscribe(prefixes)

        return BlockingSubscription(self, self._run(make()))

    def request(
        self,
        node: str,
        msg_type: str,
        content: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Message:
        return self._run(self.client.request(node, msg_type, content, **kwargs))

    def send_frames(
        self,
        node: str,
        bus: str,
        frames: Sequence[CanFrame | str | dict[str, Any]],
        **kwargs: Any,
    ) -> int:
        return self._run(self.client.send_frames(node, bus, frames, **kwargs))

    def tx_log(self, node: str, bus: str | None = None, **kwargs: Any) -> list[CanFrame]:
        return self._run(self.client.tx_log(node, bus, **kwargs))

    def helm(
        self, node: str, bus: str | None = None, *, force: bool = False, reason: str = ""
    ) -> BlockingHelm:
        """``with client.helm("propulsion") as helm: helm.send("can0", [...])``."""
        return BlockingHelm(self, self.client.helm(node, bus, force=force, reason=reason))

    def node_table(self, wait: float | None = None) -> list[NodeRow]:
        return self._run(self.client.node_table(wait))

    def close(self) -> None:
        """Close the client and stop its thread (idempotent)."""
        if self.closed:
            return
        try:
            self._thread.run(self.client.aclose(), timeout=10)
        finally:
            self.closed = True
            self._thread.stop()
