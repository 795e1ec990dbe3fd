"""Encode and decode the Jupyter multipart envelope.

::

    [identity ..., b"<IDS|MSG>", signature, header, parent_header, metadata, content, buffer ...]

A ``Codec`` belongs to one sender (a node, a forwarder, an operator): it holds the session
id and username it stamps on headers, the signing key, and the replay guard for what it
receives. It never touches a socket.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

from rovbus.errors import EnvelopeError, SignatureError
from rovbus.wire.message import PROTOCOL_VERSION, Message, check_header, format_date, parse_date
from rovbus.wire.serializers import Serializer, detect, pack, unpack
from rovbus.wire.signing import DEFAULT_SCHEME, ReplayGuard, Signer

DELIMITER = b"<IDS|MSG>"

_DICT_FRAMES = ("header", "parent_header", "metadata", "content")


def new_session_id() -> str:
    """A fresh random id in jupyter_client's shape (8-4 hex chunks of 16 random bytes)."""
    raw = os.urandom(16).hex()
    return f"{raw[:8]}-{raw[8:]}"


def split_envelope(frames: Sequence[bytes]) -> tuple[tuple[bytes, ...], Sequence[bytes]]:
    """Split at the delimiter: (identities, [signature, header, parent, metadata, content, ...])."""
    for index, frame in enumerate(frames):
        if frame == DELIMITER:
            return tuple(frames[:index]), frames[index + 1 :]
    raise EnvelopeError(f"no {DELIMITER.decode()} delimiter among {len(frames)} frames")


class Codec:
    """Builds, signs, encodes, verifies and decodes messages for one sender.

    ``key`` empty: no signing, and unsigned messages are accepted. With a key, ``decode``
    raises ``SignatureError`` for unsigned, forged and replayed messages, and (with
    ``max_age``) for messages whose header date is older than that many seconds.
    """

    def __init__(
        self,
        key: bytes = b"",
        signature_scheme: str = DEFAULT_SCHEME,
        *,
        username: str = "rovbus",
        session: str | None = None,
        serializer: Serializer = Serializer.MSGPACK,
        replay_window: int = 4096,
        max_age: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = Signer(key, signature_scheme)
        self.replay_guard = ReplayGuard(replay_window)
        self.username = username
        self.session = session or new_session_id()
        self.serializer = Serializer(serializer)
        self.max_age = max_age or None
        self.clock = clock
        self._counter = itertools.count(1)
        self._empty = {s: pack({}, s) for s in Serializer}

    @property
    def key(self) -> bytes:
        return self.signer.key

    @property
    def signature_scheme(self) -> str:
        return self.signer.scheme

    # -- building ---------------------------------------------------------------------

    def header(self, msg_type: str) -> dict[str, Any]:
        """A fresh header: unique msg_id, this session and username, the date now."""
        return {
            "msg_id": f"{self.session}_{os.getpid()}_{next(self._counter)}",
            "session": self.session,
            "username": self.username,
            "date": format_date(self.clock()),
            "msg_type": msg_type,
            "version": PROTOCOL_VERSION,
        }

    def message(
        self,
        msg_type: str,
        content: dict[str, Any] | None = None,
        *,
        parent: Message | None = None,
        metadata: dict[str, Any] | None = None,
        buffers: Sequence[bytes] = (),
        identities: Sequence[bytes] = (),
        serializer: Serializer | None = None,
    ) -> Message:
        return Message(
            header=self.header(msg_type),
            parent_header=dict(parent.header) if parent is not None else {},
            metadata=metadata if metadata is not None else {},
            content=content if content is not None else {},
            buffers=tuple(buffers),
            identities=tuple(identities),
            serializer=serializer or self.serializer,
        )

    def reply(
        self,
        request: Message,
        msg_type: str,
        content: dict[str, Any],
        *,
        metadata: dict[str, Any] | None = None,
    ) -> Message:
        """A reply to ``request``: its routing identities, its serializer, parented to it."""
        return self.message(
            msg_type,
            content,
            parent=request,
            metadata=metadata,
            identities=request.identities,
            serializer=request.serializer,
        )

    # -- encoding ---------------------------------------------------------------------

    def encode(self, message: Message) -> list[bytes]:
        """The multipart frames of ``message``, signed with this codec's key."""
        s = message.serializer
        empty = self._empty[s]
        parts = [
            pack(message.header, s),
            pack(message.parent_header, s) if message.parent_header else empty,
            pack(message.metadata, s) if message.metadata else empty,
            pack(message.content, s) if message.content else empty,
        ]
        return [
            *message.identities,
            DELIMITER,
            self.signer.sign(parts),
            *parts,
            *message.buffers,
        ]

    # -- decoding ---------------------------------------------------------------------

    def decode(self, frames: Sequence[bytes]) -> Message:
        """Verify and decode ``frames``. Raises only ``EnvelopeError`` or ``SignatureError``."""
        identities, rest = split_envelope(frames)
        if len(rest) < 5:
            raise EnvelopeError(
                f"{len(rest)} frames after the delimiter, expected at least 5 "
                "(signature, header, parent_header, metadata, content)"
            )
        signature = bytes(rest[0])
        parts = [bytes(p) for p in rest[1:5]]
        if self.signer.enabled:
            self._verify(signature, parts)
        serializer = detect(parts[0])
        header, parent_header, metadata, content = (
            unpack(frame, serializer, name) for frame, name in zip(parts, _DICT_FRAMES, strict=True)
        )
        check_header(header)
        if self.max_age is not None:
            age = self.clock() - parse_date(header["date"])
            if age > self.max_age:
                raise SignatureError(
                    f"message {header['msg_id']} is {age:.1f} s old, older than {self.max_age} s"
                )
        return Message(
            header=header,
            parent_header=parent_header,
            metadata=metadata,
            content=content,
            buffers=tuple(bytes(b) for b in rest[5:]),
            identities=identities,
            serializer=serializer,
        )

    def _verify(self, signature: bytes, parts: Sequence[bytes]) -> None:
        if not signature:
            raise SignatureError("unsigned message (a key is configured)")
        if not self.signer.verify(signature, parts):
            raise SignatureError("invalid signature")
        if signature in self.replay_guard:
            raise SignatureError("replayed message (signature already seen)")
        self.replay_guard.add(signature)
