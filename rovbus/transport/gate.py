"""Refusing a peer address at a daemon's publishers for a while, by ZAP.

libzmq cannot drop one subscriber of an XPUB; what frees the subscriptions a peer holds is
closing the socket (see :mod:`rovbus.transport.subguard`). Every subscriber then
reconnects, so the peer that went over the caps must be kept out at connection time:
publishers set ``ZAP_DOMAIN`` to :data:`PUB_DOMAIN`, and libzmq asks the daemon's ZAP
handler (:class:`GateAuthenticator`) about each new connection, with the peer's IP
address. The handler refuses the addresses its :class:`PeerGate` refuses, until their
cooldown ends, and gives every connection it admits a number of its own as its
``User-Id``, which libzmq attaches to that connection's subscriptions: so a guard can
tell two connections from one address apart.

Only sockets with ``ZAP_DOMAIN`` set ask ZAP under the NULL mechanism, so a daemon's
request sockets are not affected; under CURVE every connection asks ZAP (the forwarder's
:class:`~rovbus.transport.curve.CurveAuthenticator` is a ``GateAuthenticator``), and the
gate applies only to the publisher's domain.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import zmq
from zmq.auth.asyncio import AsyncioAuthenticator

from rovbus.ratelimit import RateLimiter

__all__ = ["COOLDOWN", "PUB_DOMAIN", "GateAuthenticator", "PeerGate"]

log = logging.getLogger(__name__)

#: the ZAP domain of every publisher a gate guards
PUB_DOMAIN = "rovbus-pub"
#: seconds an address stays refused after it went over a cap
COOLDOWN = 30.0
#: addresses a gate remembers at most (the oldest refusal is forgotten first)
MAX_REFUSED = 4096

_ZAP_VERSION = b"1.0"


class PeerGate:
    """The peer addresses refused at a daemon's publishers, each until its cooldown ends."""

    def __init__(self, what: str, cooldown: float = COOLDOWN) -> None:
        self.what = what
        self.cooldown = cooldown
        self.refused = 0  # connections refused during a cooldown
        self._until: dict[str, float] = {}  # address -> monotonic end of its cooldown
        self._limiter = RateLimiter(10.0)

    def refuse(self, address: str) -> None:
        """Refuse ``address`` for the cooldown, from now."""
        self._until.pop(address, None)
        if len(self._until) >= MAX_REFUSED:
            self._forget_expired()
            if len(self._until) >= MAX_REFUSED:
                del self._until[next(iter(self._until))]
        self._until[address] = time.monotonic() + self.cooldown

    def admits(self, address: str) -> bool:
        """False (and counted, and logged at most every 10 s per address) while
        ``address`` is refused."""
        until = self._until.get(address)
        if until is None:
            return True
        if until <= time.monotonic():
            del self._until[address]
            return True
        self.refused += 1
        self._limiter.log(
            log,
            logging.INFO,
            address,
            "%s: refused a connection to its pub from %s (went over the subscription caps; "
            "refused for %.0f s more)",
            self.what,
            address,
            until - time.monotonic(),
        )
        return False

    def refusing(self) -> dict[str, float]:
        """Seconds each refused address has left."""
        self._forget_expired()
        now = time.monotonic()
        return {address: round(until - now, 1) for address, until in self._until.items()}

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for address in [a for a, until in self._until.items() if until <= now]:
            del self._until[address]


class GateAuthenticator(AsyncioAuthenticator):
    """The ZAP handler of a daemon's context, on its event loop: for :data:`PUB_DOMAIN`,
    refuses what the gate refuses and numbers each connection it admits (its
    ``User-Id``); everything else goes to pyzmq's authenticator (CURVE in a subclass).

    ``start()`` before the publishers bind, ``stop()`` before the context terminates.
    """

    def __init__(self, context: zmq.Context[Any], gate: PeerGate) -> None:
        super().__init__(context, log=logging.getLogger("rovbus.zap"))
        self.gate = gate
        self._numbered = 0

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        if len(msg) >= 6 and msg[0] == _ZAP_VERSION and msg[2] == PUB_DOMAIN.encode():
            request_id, address, mechanism = msg[1], msg[3].decode("utf-8", "replace"), msg[5]
            if not self.gate.admits(address):
                self._reply(request_id, b"400", b"refused: subscribed beyond the caps")
                return
            if mechanism == b"NULL":
                self._numbered += 1
                self._reply(request_id, b"200", b"OK", str(self._numbered).encode())
                return
        await super().handle_zap_message(msg)

    def _reply(self, request_id: bytes, status: bytes, text: bytes, user_id: bytes = b"") -> None:
        """A ZAP reply (RFC 27): version, request id, status, text, user id, metadata."""
        self.zap_socket.send_multipart([_ZAP_VERSION, request_id, status, text, user_id, b""])
