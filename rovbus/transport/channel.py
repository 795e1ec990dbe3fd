"""An asyncio ZeroMQ socket that speaks envelopes through one ``Codec``, with counters and
the receiver's replay guard.

``decode`` never raises for what a peer sent: a bad envelope or signature comes back as a
``Rejected`` (counted), so a daemon's receive loop decides whether to answer, log or drop,
and goes on. Messages are taken off the socket by the loop's ``Intake`` (transport/intake.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio

from rovbus.errors import SignatureError, WireError
from rovbus.transport.sendnow import send_counted
from rovbus.transport.stats import SocketStats, frames_size
from rovbus.wire.codec import Codec, split_envelope
from rovbus.wire.message import Message
from rovbus.wire.serializers import Serializer, detect, unpack
from rovbus.wire.signing import ReplayGuard


@dataclass(frozen=True, slots=True)
class Rejected:
    """A message that failed to decode or verify.

    ``header`` is the sender's header when it could be read without trusting the message
    (for an error reply), else ``None``. ``identities`` is the routing stack, if any.
    """

    error: WireError
    identities: tuple[bytes, ...]
    header: dict[str, Any] | None
    serializer: Serializer


def peek_header(
    frames: Sequence[bytes],
) -> tuple[tuple[bytes, ...], dict[str, Any] | None, Serializer]:
    """Best-effort read of identities and header from frames that failed to decode."""
    try:
        identities, rest = split_envelope(frames)
    except WireError:
        return (), None, Serializer.MSGPACK
    try:
        serializer = detect(rest[1])
        header = unpack(rest[1], serializer, "header")
    except (WireError, IndexError):
        return identities, None, Serializer.MSGPACK
    if not isinstance(header.get("msg_id"), str) or not isinstance(header.get("msg_type"), str):
        return identities, None, serializer
    return identities, header, serializer


class Channel:
    """One socket, one codec, one set of counters, one replay guard.

    The guard remembers the signatures this channel took (``codec.new_replay_guard()``
    unless given: channels that verify with one key and must not take the same message
    twice between them share one)."""

    def __init__(
        self,
        name: str,
        socket: zmq.asyncio.Socket,
        codec: Codec,
        replay: ReplayGuard | None = None,
    ) -> None:
        self.name = name
        self.socket = socket
        self.codec = codec
        self.replay_guard = replay if replay is not None else codec.new_replay_guard()
        self.stats = SocketStats()

    def decode(self, frames: list[bytes]) -> Message | Rejected:
        stats = self.stats
        stats.messages_in += 1
        stats.bytes_in += frames_size(frames)
        try:
            return self.codec.decode(frames, self.replay_guard)
        except WireError as exc:
            stats.rejected += 1
            identities, header, serializer = peek_header(frames)
            # Never answer a message whose signature failed, or (with a key) one that could
            # not be verified at all (too few frames): a signed reply would help a forger.
            if isinstance(exc, SignatureError) or (
                header is not None and not self.codec.signature_holds(frames)
            ):
                header = None
            return Rejected(exc, identities, header, serializer)

    async def send(self, message: Message) -> None:
        send_counted(self.socket, self.codec.encode(message), self.stats)

    def close(self, linger_ms: int | None = None) -> None:
        if not self.socket.closed:
            self.socket.close(linger=linger_ms)
