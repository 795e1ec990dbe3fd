"""The helm of a node's buses: one holder, a dead man's lease, the failsafe frames.

A bus whose system-file entry has a ``helm`` table (``rovbus.config.helm``) gates its
helm IDs: only the client holding the helm may send them. A client is its request
header's ``session`` (signed with the node's start key on a signed system, so a forged or
replayed request cannot pass as the holder's). The lease runs on the event loop's
monotonic clock and is renewed only by the holder's helm frames and ``helm_renew``
requests; nothing in the node renews it.

Whenever no one holds the helm any more (the lease ran out, the holder released it, a
stop, transmit turned off) and when the node starts, the node drops every frame queued for
the bus (its own queue, and the interface's where it can), queues the failsafe frames at
once (before anything else on the loop runs) and publishes ``helm_status`` on
``<node>/helm``. From then until a holder sends, every frame to a helm ID is refused
unless it is a failsafe frame, so none but failsafe frames reaches the bus. With
``repeat_ms`` the failsafe frames go out again at that period while no one holds it.

Requests (control channel): ``helm_take`` (``bus``, ``force``, ``reason``),
``helm_renew``, ``helm_release`` (``bus``), ``helm_status`` and ``stop`` (``reason``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from rovbus.can import CanPort
from rovbus.config import NodeConfig
from rovbus.config.helm import HelmConfig
from rovbus.errors import CanError, HelmLost, HelmRefused
from rovbus.node.requests import tx_off_reason, tx_reason
from rovbus.ratelimit import RateLimiter
from rovbus.wire.canframe import CanFrame
from rovbus.wire.contents import HelmBeat
from rovbus.wire.message import Message
from rovbus.wire.origin import Origin
from rovbus.wire.topics import helm_topic

__all__ = ["BusHelm", "NodeHelm"]

log = logging.getLogger(__name__)

#: former holders told ``HelmLost`` on their next frame or renewal, per bus
LOST_MEMORY = 16
#: how long turning transmit off waits for the failsafe frames to reach the bus
TX_OFF_FAILSAFE_WAIT_S = 0.25

Publish = Callable[[str, str, dict[str, Any]], None]


@dataclass(frozen=True, slots=True)
class Holder:
    username: str
    session: str
    since: float  # UTC epoch seconds, for people

    @classmethod
    def of(cls, request: Message) -> Holder:
        return cls(str(request.header["username"]), str(request.header["session"]), time.time())

    def __str__(self) -> str:
        return f"{self.username} (session {self.session[:13]})"


class BusHelm:
    """The helm of one bus: holder, lease, failsafe. Everything runs on the loop thread."""

    def __init__(self, node: str, port: CanPort, config: HelmConfig, changed: Callable[[], None]):
        self.node = node
        self.port = port
        self.config = config
        self.lease_s = config.lease_ms / 1000.0
        self.holder: Holder | None = None
        self.deadline = 0.0  # loop time the lease runs out
        self.failsafe_active = False
        self.reason = ""
        self.failsafe_written = 0  # times the failsafe frames were queued
        self.failsafe_failed = 0  # times they could not be (bus down, transmit off)
        self._changed = changed
        self._lost: OrderedDict[str, str] = OrderedDict()  # session -> what to tell it
        self._lease_timer: asyncio.TimerHandle | None = None
        self._repeat_timer: asyncio.TimerHandle | None = None
        self._failsafe = tuple(
            CanFrame(port.name, f.arbitration_id, f.data, f.extended, direction="tx")
            for f in config.failsafe
        )
        self._log = RateLimiter(30.0)

    @property
    def name(self) -> str:
        return self.port.name

    @property
    def where(self) -> str:
        return f"{self.node}/{self.name}"

    # -- who may send -------------------------------------------------------------------

    def gated(self, frames: Sequence[CanFrame]) -> list[int]:
        """The indexes of ``frames`` only the holder may send: frames to helm IDs that
        are not failsafe frames (a remote or FD frame never is one)."""
        config = self.config
        return [
            i
            for i, f in enumerate(frames)
            if (
                config.ids.allows(f.arbitration_id, extended=f.is_extended_id)
                if f.is_remote_frame or f.is_fd
                else config.needs_helm(f.arbitration_id, f.is_extended_id, f.data)
            )
        ]

    def admit(self, frames: Sequence[CanFrame], request: Message) -> None:
        """Let ``frames`` from ``request``'s client through, or raise HelmRefused or
        HelmLost; frames to helm IDs from the holder renew its lease."""
        gated = self.gated(frames)
        if not gated:
            return
        session = request.header["session"]
        if self.holder is not None and self.holder.session == session:
            self._renew()
            if self.failsafe_active:
                self.failsafe_active = False
                self.reason = f"{self.holder.username} sends"
                self._changed()
            return
        self._refuse(session, f"frame {gated[0]} (ID 0x{frames[gated[0]].arbitration_id:X})")

    def _refuse(self, session: str, what: str) -> None:
        lost = self._lost.get(session)
        if lost is not None:
            raise HelmLost(f"{what}: you lost the helm of {self.where}: {lost}")
        if self.holder is None:
            raise HelmRefused(
                f"{what} needs the helm of {self.where} and no one holds it; take it first "
                f"(rovbus helm {self.node} {self.name}, or client.helm({self.node!r}))"
            )
        raise HelmRefused(
            f"{what} needs the helm of {self.where}, held by {self.holder} since "
            f"{_clock(self.holder.since)}; it may be taken over with force and a reason "
            f"(rovbus helm {self.node} {self.name} --force --reason ...)"
        )

    # -- taking, renewing, releasing ------------------------------------------------------

    def check_take(self, request: Message, force: bool) -> None:
        """Raise HelmRefused if ``request``'s client may not take the helm now."""
        holder = self.holder
        if holder is None or holder.session == request.header["session"] or force:
            return
        raise HelmRefused(
            f"the helm of {self.where} is held by {holder} since {_clock(holder.since)}, "
            f"{self.lease_left():.3f} s of its lease left; take it over with force and a "
            "reason"
        )

    def take(self, request: Message, reason: str) -> None:
        taker = Holder.of(request)
        before = self.holder
        if before is not None and before.session != taker.session:
            self._lose(before, f"taken over by {taker.username} at {_clock(taker.since)}: {reason}")
        self._lost.pop(taker.session, None)
        if before is None or before.session != taker.session:
            self.holder = taker
            self.reason = f"taken by {taker.username}" + (f": {reason}" if reason else "")
        self._cancel_repeat()
        self._renew()
        self._changed()

    def renew(self, request: Message) -> None:
        session = request.header["session"]
        if self.holder is not None and self.holder.session == session:
            self._renew()
            return
        self._refuse(session, "renewal")

    def release(self, request: Message) -> bool:
        """End ``request``'s client's hold (False: it held nothing here)."""
        holder = self.holder
        if holder is None or holder.session != request.header["session"]:
            return False
        self.failsafe(f"released by {holder.username}")
        return True

    def lease_left(self) -> float:
        if self.holder is None:
            return 0.0
        return max(0.0, self.deadline - asyncio.get_running_loop().time())

    def _renew(self) -> None:
        loop = asyncio.get_running_loop()
        self.deadline = loop.time() + self.lease_s
        if self._lease_timer is None:
            self._lease_timer = loop.call_at(self.deadline, self._check_lease)

    def _check_lease(self) -> None:
        """The lease timer: the lease ran out, or was renewed meanwhile (wait again)."""
        self._lease_timer = None
        holder = self.holder
        if holder is None:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < self.deadline:
            self._lease_timer = loop.call_at(self.deadline, self._check_lease)
            return
        why = (
            f"its lease ran out: no helm frame or renewal from {holder.username} within "
            f"{self.config.lease_ms} ms"
        )
        self._lose(holder, why)
        self.failsafe(f"lease of {holder.username} ran out")

    def _lose(self, holder: Holder, why: str) -> None:
        self._lost[holder.session] = why
        self._lost.move_to_end(holder.session)
        while len(self._lost) > LOST_MEMORY:
            self._lost.popitem(last=False)

    # -- the failsafe -------------------------------------------------------------------

    def failsafe(self, why: str, *, lost: str | None = None) -> asyncio.Future[int] | None:
        """No one holds the helm from now: drop what is queued for the bus, queue the
        failsafe frames, publish. ``lost``: what the holder is told, if it had one.
        Returns the failsafe frames' future (None: they could not be queued)."""
        holder, self.holder = self.holder, None
        if holder is not None and lost is not None:
            self._lose(holder, lost)
        if self._lease_timer is not None:
            self._lease_timer.cancel()
            self._lease_timer = None
        self.port.drop_queued(f"dropped for the failsafe of {self.where} ({why})")
        self.port.flush_device_queue()
        self.reason = why
        future = self._write()
        self.failsafe_active = True
        self._schedule_repeat()
        self._changed()
        return future

    def _write(self) -> asyncio.Future[int] | None:
        try:
            origin = Origin.own(self.node, f"failsafe: {self.reason}", at=time.time())
            future = self.port.submit(self._failsafe, origin)
        except CanError as exc:
            self._failed("written", exc)
            return None
        self.failsafe_written += 1
        future.add_done_callback(self._written)
        return future

    def _written(self, future: asyncio.Future[int]) -> None:
        if not future.cancelled() and (exc := future.exception()) is not None:
            self._failed("sent", exc)

    def _failed(self, what: str, exc: BaseException) -> None:
        """The failsafe frames could not be queued or sent (bus down, transmit off)."""
        self.failsafe_failed += 1
        held = self._log.allow(what)
        if held is not None:
            log.warning(
                "%s: failsafe frames not %s: %s (%d more not logged)", self.where, what, exc, held
            )

    def _schedule_repeat(self) -> None:
        self._cancel_repeat()
        if self.config.repeat_ms:
            loop = asyncio.get_running_loop()
            self._repeat_timer = loop.call_later(self.config.repeat_ms / 1000.0, self._repeat)

    def _repeat(self) -> None:
        self._repeat_timer = None
        if self.holder is None and self.failsafe_active:
            self._write()
            self._schedule_repeat()

    def _cancel_repeat(self) -> None:
        if self._repeat_timer is not None:
            self._repeat_timer.cancel()
            self._repeat_timer = None

    def close(self) -> None:
        for timer in (self._lease_timer, self._repeat_timer):
            if timer is not None:
                timer.cancel()
        self._lease_timer = self._repeat_timer = None

    # -- what others see ----------------------------------------------------------------

    def status(self) -> HelmBeat:
        holder = self.holder
        return {
            "holder": holder.username if holder else None,
            "session": holder.session if holder else None,
            "since": round(holder.since, 6) if holder else None,
            "lease_ms": self.config.lease_ms,
            "lease_left_ms": round(self.lease_left() * 1000),
            "failsafe_active": self.failsafe_active,
            "reason": self.reason,
            "failsafe_writes": self.failsafe_written,
            "failsafe_failures": self.failsafe_failed,
        }


class NodeHelm:
    """The helms of a node's buses and the requests about them."""

    def __init__(self, config: NodeConfig, ports: dict[str, CanPort], publish: Publish) -> None:
        self.node = config.name
        self._publish = publish
        self.buses: dict[str, BusHelm] = {
            bus.name: BusHelm(config.name, ports[bus.name], bus.helm, self._changed)
            for bus in config.buses
            if bus.helm is not None and bus.name in ports
        }

    def __bool__(self) -> bool:
        return bool(self.buses)

    def start(self) -> None:
        """The node started: no one holds any helm; the failsafe frames go out."""
        for helm in self.buses.values():
            helm.failsafe("node started")

    def handlers(self) -> dict[str, Callable[[Message], Awaitable[dict[str, Any]]]]:
        """The control requests, by type, for the daemon's request dispatch."""
        return {
            "helm_take_request": self._take,
            "helm_renew_request": self._renew,
            "helm_release_request": self._release,
            "helm_status_request": self._status,
            "stop_request": self._stop,
        }

    # -- the gate on every transmission --------------------------------------------------

    def admit(self, bus: str, frames: Sequence[CanFrame], request: Message) -> None:
        """Raise HelmRefused or HelmLost unless ``request``'s client may send ``frames``
        on ``bus``; the holder's frames to helm IDs renew its lease."""
        helm = self.buses.get(bus)
        if helm is not None:
            helm.admit(frames, request)

    # -- transmit off and on ------------------------------------------------------------

    async def before_tx_off(self, request: Message) -> None:
        """Transmit is turning off: the failsafe frames go out first (waiting up to
        ``TX_OFF_FAILSAFE_WAIT_S`` for the bus), and no one holds any helm."""
        by = request.header["username"]
        pending = [
            future
            for helm in self.buses.values()
            if (
                future := helm.failsafe(
                    f"transmit turned off by {by}", lost=f"transmit turned off by {by}"
                )
            )
            is not None
        ]
        if pending:
            await asyncio.wait(pending, timeout=TX_OFF_FAILSAFE_WAIT_S)

    def after_tx_on(self) -> None:
        """Transmit is on again: where no one holds the helm, the failsafe goes out again
        (and repeats, with ``repeat_ms``)."""
        for helm in self.buses.values():
            if helm.holder is None:
                helm.failsafe("transmit on again")

    # -- requests -----------------------------------------------------------------------

    def _chosen(self, request: Message) -> list[BusHelm]:
        bus = request.content.get("bus")
        if bus is None or bus == "":
            if not self.buses:
                raise ValueError(f"node {self.node} has no bus with a helm")
            return list(self.buses.values())
        if not isinstance(bus, str) or bus not in self.buses:
            known = ", ".join(self.buses) or "none"
            raise ValueError(f"node {self.node} has no helm on bus {bus!r}; helm buses: {known}")
        return [self.buses[bus]]

    async def _take(self, request: Message) -> dict[str, Any]:
        chosen = self._chosen(request)
        force = request.content.get("force", False) is True
        reason = tx_reason(request.content.get("reason"), required=False)
        if force and not reason and any(h.holder is not None for h in chosen):
            tx_reason(None, required=True)  # raises: a take-over needs a reason
        for helm in chosen:  # all or nothing
            helm.check_take(request, force)
        for helm in chosen:
            helm.take(request, reason)
        return self._reply(chosen)

    async def _renew(self, request: Message) -> dict[str, Any]:
        chosen = self._chosen(request)
        for helm in chosen:
            helm.renew(request)
        return self._reply(chosen)

    async def _release(self, request: Message) -> dict[str, Any]:
        chosen = self._chosen(request)
        released = [helm.name for helm in chosen if helm.release(request)]
        return {**self._reply(chosen), "released": released}

    async def _status(self, request: Message) -> dict[str, Any]:
        return self._reply(list(self.buses.values()))

    async def _stop(self, request: Message) -> dict[str, Any]:
        """Failsafe on every helm bus now, from anyone; holders lose the helm."""
        by = request.header["username"]
        reason = tx_off_reason(request.content.get("reason"))
        why = f"stop by {by}" + (f": {reason}" if reason else "")
        for helm in self.buses.values():
            helm.failsafe(why, lost=why)
        return self._reply(list(self.buses.values()))

    def _reply(self, chosen: Iterable[BusHelm]) -> dict[str, Any]:
        return {"status": "ok", "node": self.node, "buses": {h.name: h.status() for h in chosen}}

    # -- publishing ---------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """Every helm bus's state (``helm_status`` content, the heartbeat's ``helm``)."""
        return {"node": self.node, "buses": {name: h.status() for name, h in self.buses.items()}}

    def heartbeat(self) -> dict[str, HelmBeat]:
        """At each heartbeat: ``helm_status`` again (so a forwarder's cache holds it for
        late joiners, whatever it missed), and the heartbeat's ``helm``. A node without a
        helm bus publishes none."""
        buses = {name: h.status() for name, h in self.buses.items()}
        if buses:
            self._publish(helm_topic(self.node), "helm_status", {"node": self.node, "buses": buses})
        return buses

    def _changed(self) -> None:
        self._publish(helm_topic(self.node), "helm_status", self.status())

    def close(self) -> None:
        for helm in self.buses.values():
            helm.close()


def _clock(epoch: float) -> str:
    """A wall-clock time for people, UTC: ``12:04:31.250``."""
    return time.strftime("%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"
