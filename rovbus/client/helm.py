"""Holding the helm of a node from a client: ``async with client.helm("propulsion") as helm``.

The node keeps the lease (rovbus.node.helm); this side only asks. Each :meth:`Helm.send`
to a helm ID renews it, :meth:`Helm.renew` renews it without new setpoints, and leaving
the block releases it, which makes the node write its failsafe frames. Nothing here
renews in the background: a program that stops sending loses the helm after ``lease_ms``.
A refusal raises :class:`~rovbus.errors.HelmRefused`, a lost helm
:class:`~rovbus.errors.HelmLost`, each naming who holds it or why.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Protocol

from rovbus.closing import AsyncClosing
from rovbus.errors import HelmLost, HelmRefused, RequestFailed, RovbusError
from rovbus.wire.canframe import CanFrame
from rovbus.wire.message import Message

Frames = Sequence[CanFrame | str | dict[str, Any]]


class Peer(Protocol):
    """What a helm asks of its client (``rovbus.client.Client``): a request on control,
    frames sent, each within ``timeout``."""

    async def request(
        self, node: str, msg_type: str, content: dict[str, Any], *, channel: str, timeout: float
    ) -> Message: ...

    async def send_frames(self, node: str, bus: str, frames: Frames, *, timeout: float) -> int: ...


__all__ = ["Helm", "helm_error"]

_ERRORS: dict[str, type[RovbusError]] = {"HelmLost": HelmLost, "HelmRefused": HelmRefused}


def helm_error(exc: RequestFailed) -> RovbusError:
    """The node's helm refusal as HelmLost or HelmRefused (else ``exc`` itself)."""
    kind = _ERRORS.get(exc.ename)
    return exc if kind is None else kind(f"{exc.node}: {exc.ename}: {exc.evalue}")


@dataclass(eq=False)
class Helm(AsyncClosing):
    """The helm of ``node`` (every helm bus of it, or ``bus``) for one client:
    ``async with`` takes it and gives it back (unless it was lost)."""

    client: Peer
    node: str
    bus: str | None = None
    _: KW_ONLY
    force: bool = False
    reason: str = ""
    timeout: float = 1.0
    #: the helm state of the node's last reply (``helm_status`` content's ``buses``)
    state: dict[str, Any] = field(default_factory=dict)
    #: the node said HelmLost: taken over, or the lease ran out; nothing to give back
    lost: bool = False

    def _refused(self, exc: RequestFailed) -> RovbusError:
        error = helm_error(exc)
        self.lost = self.lost or isinstance(error, HelmLost)
        return error

    async def _control(self, msg_type: str, **content: Any) -> dict[str, Any]:
        if self.bus is not None:
            content["bus"] = self.bus
        try:
            reply = await self.client.request(
                self.node, msg_type, content, channel="control", timeout=self.timeout
            )
        except RequestFailed as exc:
            raise self._refused(exc) from None
        buses = reply.content.get("buses")
        self.state = buses if isinstance(buses, dict) else {}
        return reply.content

    async def take(self) -> Helm:
        """Take the helm (with ``force``, over another holder; that needs a ``reason``)."""
        content: dict[str, Any] = {"force": self.force}
        if self.reason:
            content["reason"] = self.reason
        await self._control("helm_take", **content)
        return self

    async def send(self, bus: str, frames: Frames) -> int:
        """Transmit ``frames`` on ``bus``; frames to helm IDs renew the lease."""
        try:
            return await self.client.send_frames(self.node, bus, frames, timeout=self.timeout)
        except RequestFailed as exc:
            raise self._refused(exc) from None

    async def renew(self) -> None:
        """Renew the lease without new setpoints (a caller holding position)."""
        await self._control("helm_renew")

    async def release(self) -> None:
        """Give the helm back: the node writes its failsafe frames."""
        await self._control("helm_release")

    async def aclose(self) -> None:
        """Release the helm, unless the node said it was lost."""
        if not self.lost:
            await self.release()

    async def __aenter__(self) -> Helm:
        return await self.take()
