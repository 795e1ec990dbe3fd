"""Encode and decode the Jupyter multipart envelope.

::

    [identity ..., b"<IDS|MSG>", signature, header, parent_header, metadata, content, buffer ...]

A ``Codec`` belongs to one sender (a node, a forwarder, an operator): it holds the session
id and username it stamps on headers, the signing key, and the checks it applies to what
it receives (``max_age``, ``max_skew``, the replay window). What a receiver remembers, the
signatures already taken (``ReplayGuard``), belongs to the receiving channel
(transport/channel.py), which passes it to ``decode``. A codec never touches a socket.
``for_start`` gives the same sender's codec for the conversations of one start of a
daemon, signed with that start's key.
"""

from __future__ import annotations

import copy
import itertools
import os
import time
from collections.abc import Callable, Sequence
from hmac import compare_digest
from typing import Any

import msgpack

from rovbus.errors import EnvelopeError, SignatureError
from rovbus.wire.message import (
    PROTOCOL_VERSION,
    Message,
    check_header,
    format_date,
    make_message,
    parse_date,
)
from rovbus.wire.serializers import (
    PACKERS,
    Serializer,
    detect,
    pack,
    pack_msgpack,
    unpack_json,
    unpack_msgpack,
)
from rovbus.wire.signing import DEFAULT_SCHEME, ReplayGuard, Signer, derive_key

DELIMITER = b"<IDS|MSG>"

#: seconds a header date may be ahead of the receiver's clock where ``max_age`` is set
DEFAULT_MAX_SKEW = 1.0

#: First bytes of a msgpack map (fixmap, map16, map32): a msgpack header frame.
_MSGPACK_MAP_STARTS = frozenset(bytes([b]) for b in (*range(0x80, 0x90), 0xDE, 0xDF))
_EMPTY_MSGPACK = b"\x80"
_EMPTY_JSON = b"{}"

#: msgpack of one string or integer, as ``pack_msgpack`` writes it inside a map (same
#: packer settings: shortest integer form)
_packb: Callable[[str | int], bytes] = msgpack.Packer(use_bin_type=True, autoreset=True).pack
#: a msgpack map of the six header fields, and its first key
_HEADER_HEAD = b"\x86" + _packb("msg_id")
#: the same with a seventh field, ``seq``, packed last
_HEADER_HEAD_SEQ = b"\x87" + _packb("msg_id")
_SEQ_KEY = _packb("seq")

# The pid in msg_ids, as jupyter_client writes it; kept current across fork() without a
# system call per message.
_pid = os.getpid()


def _refresh_pid() -> None:
    global _pid
    _pid = os.getpid()


os.register_at_fork(after_in_child=_refresh_pid)


def new_session_id() -> str:
    """A fresh random id in jupyter_client's shape (8-4 hex chunks of 16 random bytes)."""
    raw = os.urandom(16).hex()
    return f"{raw[:8]}-{raw[8:]}"


def _delimiter_at(frames: Sequence[bytes]) -> int:
    """The index of the delimiter frame; ``EnvelopeError`` when there is none."""
    try:
        return frames.index(DELIMITER)
    except ValueError:
        raise EnvelopeError(
            f"no {DELIMITER.decode()} delimiter among {len(frames)} frames"
        ) from None


def split_envelope(frames: Sequence[bytes]) -> tuple[tuple[bytes, ...], Sequence[bytes]]:
    """Split at the delimiter: (identities, [signature, header, parent, metadata, content, ...])."""
    index = _delimiter_at(frames)
    identities = tuple(frames[:index])
    for identity in identities:
        if type(identity) is not bytes:
            identities = tuple(bytes(i) for i in identities)
            break
    return identities, frames[index + 1 :]


class Codec:
    """Builds, signs, encodes, verifies and decodes messages for one sender.

    ``key`` empty: no signing, and unsigned messages are accepted. With a key, ``decode``
    raises ``SignatureError`` for unsigned and forged messages, for replayed ones (given
    the receiver's ``ReplayGuard``, of ``replay_window`` signatures: ``new_replay_guard``),
    and (with ``max_age``) for messages whose header date is older than that many seconds
    or more than ``max_skew`` seconds ahead of this codec's clock.
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
        max_skew: float = DEFAULT_MAX_SKEW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = Signer(key, signature_scheme)
        self._signed = self.signer.enabled
        self._root_key = self.signer.key  # what start keys derive from (see for_start)
        #: receivers' guards hold this many signatures (checked here, not at the first)
        self.replay_window = ReplayGuard(replay_window).size
        self.username = username
        self.session = session or new_session_id()
        self.serializer = Serializer(serializer)
        self.max_age = max_age or None
        self.max_skew = max_skew
        self.clock = clock
        self._counter = itertools.count(1)
        self._empty = {s: pack({}, s) for s in Serializer}
        # encode_new's msgpack header: the bytes around msg_id and date (see _splice).
        self._splice_for: tuple[str, str] = ("", "")
        self._header_middle = b""
        self._header_tails: dict[str, bytes] = {}

    @property
    def key(self) -> bytes:
        return self.signer.key

    @property
    def signature_scheme(self) -> str:
        return self.signer.scheme

    def new_replay_guard(self) -> ReplayGuard:
        """An empty guard of this codec's replay window, for a receiving channel."""
        return ReplayGuard(self.replay_window)

    def for_start(self, name: str, session: str) -> Codec:
        """This sender's codec for the conversations of daemon ``name`` in its start
        ``session``: the same session, username, msg_id counter and checks,
        signing and verifying with that start's key, derived from the key this codec was
        made with (the system key; ``derive_key``). Without a key: this codec."""
        if not self._signed:
            return self
        scheme = self.signature_scheme
        twin = copy.copy(self)
        twin.signer = Signer(derive_key(self._root_key, name, session, scheme), scheme)
        return twin

    # -- building ---------------------------------------------------------------------

    def header(self, msg_type: str, seq: int | None = None) -> dict[str, Any]:
        """A fresh header: unique msg_id, this session and username, the date now; and
        ``seq`` last when given (a publisher's per-topic sequence number)."""
        header: dict[str, Any] = {
            "msg_id": f"{self.session}_{_pid}_{next(self._counter)}",
            "session": self.session,
            "username": self.username,
            "date": format_date(self.clock()),
            "msg_type": msg_type,
            "version": PROTOCOL_VERSION,
        }
        if seq is not None:
            header["seq"] = seq
        return header

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
        seq: int | None = None,
    ) -> Message:
        return make_message(
            self.header(msg_type, seq),
            dict(parent.header) if parent is not None else {},
            metadata if metadata is not None else {},
            content if content is not None else {},
            tuple(buffers),
            tuple(identities),
            serializer or self.serializer,
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

    def encode_new(
        self,
        msg_type: str,
        content: dict[str, Any],
        identities: Sequence[bytes] = (),
        serializer: Serializer | None = None,
        seq: int | None = None,
    ) -> list[bytes]:
        """``encode(message(msg_type, content, identities=..., serializer=..., seq=...))``,
        the same bytes, without building the header dict and the ``Message``: a node's
        per-frame path.

        With msgpack the header is spliced from bytes prepared once (per ``msg_type``)
        around the packed msg_id, date and seq; JSON takes the general path.
        """
        s = serializer or self.serializer
        if s is not Serializer.MSGPACK:
            return self.encode(
                self.message(msg_type, content, identities=identities, serializer=s, seq=seq)
            )
        session = self.session
        splice_for = self._splice_for
        if splice_for[0] is not session or splice_for[1] is not self.username:
            self._splice()
        tail = self._header_tails.get(msg_type)
        if tail is None:
            tail = self._header_tails[msg_type] = b"".join(
                [_packb(x) for x in ("msg_type", msg_type, "version", PROTOCOL_VERSION)]
            )
        msg_id = _packb(f"{session}_{_pid}_{next(self._counter)}")
        date = _packb(format_date(self.clock()))
        if seq is None:
            header = b"".join((_HEADER_HEAD, msg_id, self._header_middle, date, tail))
        else:
            header = b"".join(
                (_HEADER_HEAD_SEQ, msg_id, self._header_middle, date, tail, _SEQ_KEY, _packb(seq))
            )
        empty = _EMPTY_MSGPACK
        parts = [header, empty, empty, pack_msgpack(content) if content else empty]
        return [*identities, DELIMITER, self.signer.sign(parts), *parts]

    def _splice(self) -> None:
        """Prepare the header bytes between msg_id and date for this session and username.

        The header map's order is ``header()``'s: msg_id, session, username, date,
        msg_type, version, and seq when there is one.
        """
        self._splice_for = (self.session, self.username)
        self._header_middle = b"".join(
            [_packb(x) for x in ("session", self.session, "username", self.username, "date")]
        )

    def encode(self, message: Message) -> list[bytes]:
        """The multipart frames of ``message``, signed with this codec's key."""
        s = message.serializer
        pack_frame = PACKERS[s]
        empty = self._empty[s]
        parts = [
            pack_frame(message.header),
            pack_frame(message.parent_header) if message.parent_header else empty,
            pack_frame(message.metadata) if message.metadata else empty,
            pack_frame(message.content) if message.content else empty,
        ]
        return [
            *message.identities,
            DELIMITER,
            self.signer.sign(parts),
            *parts,
            *message.buffers,
        ]

    # -- decoding ---------------------------------------------------------------------

    def signature_holds(self, frames: Sequence[bytes]) -> bool:
        """Whether ``frames`` can be trusted as signed: always without a key; with one,
        whether the signature frame matches the four dict frames after the delimiter (no
        replay or age check, nothing decoded). For deciding whether a message that failed
        to decode may be answered: a signed reply to a forged header would help a forger."""
        if not self._signed:
            return True
        try:
            _, rest = split_envelope(frames)
        except EnvelopeError:
            return False
        if len(rest) < 5:
            return False
        return compare_digest(bytes(rest[0]), self.signer.sign([bytes(f) for f in rest[1:5]]))

    def decode(self, frames: Sequence[bytes], replay: ReplayGuard | None = None) -> Message:
        """Verify and decode ``frames``; with a key, a signature already in ``replay`` (the
        receiving channel's guard) is refused, and a new one recorded there. Without a
        guard nothing is remembered (a file read back, a one-off check). Raises only
        ``EnvelopeError`` or ``SignatureError``."""
        # The hot path of every receiver: split_envelope, detect and unpack, inlined.
        index = _delimiter_at(frames)
        n = len(frames) - index - 1
        if n < 5:
            raise EnvelopeError(
                f"{n} frames after the delimiter, expected at least 5 "
                "(signature, header, parent_header, metadata, content)"
            )
        signature, header_frame, parent_frame, metadata_frame, content_frame = frames[
            index + 1 : index + 6
        ]
        if not (
            type(signature) is bytes
            and type(header_frame) is bytes
            and type(parent_frame) is bytes
            and type(metadata_frame) is bytes
            and type(content_frame) is bytes
        ):
            signature, header_frame, parent_frame, metadata_frame, content_frame = (
                bytes(f) for f in frames[index + 1 : index + 6]
            )
        if self._signed:
            if not signature:
                raise SignatureError("unsigned message (a key is configured)")
            expected = self.signer.sign((header_frame, parent_frame, metadata_frame, content_frame))
            if not compare_digest(signature, expected):
                raise SignatureError("invalid signature")
            # Recorded only now that it verified: forged signatures cannot evict real ones.
            if replay is not None and not replay.record(signature):
                raise SignatureError("replayed message (signature already seen)")
        first = header_frame[:1]
        if first in _MSGPACK_MAP_STARTS:
            serializer, unpack_frame, empty = Serializer.MSGPACK, unpack_msgpack, _EMPTY_MSGPACK
        else:
            serializer = detect(header_frame)
            unpack_frame, empty = unpack_json, _EMPTY_JSON
        header = unpack_frame(header_frame, "header")
        parent_header = {} if parent_frame == empty else unpack_frame(parent_frame, "parent_header")
        metadata = {} if metadata_frame == empty else unpack_frame(metadata_frame, "metadata")
        content = {} if content_frame == empty else unpack_frame(content_frame, "content")
        check_header(header)
        if self.max_age is not None:
            age = self.clock() - parse_date(header["date"])
            if age > self.max_age:
                raise SignatureError(
                    f"message {header['msg_id']} is {age:.1f} s old, older than {self.max_age} s"
                )
            if -age > self.max_skew:
                raise SignatureError(
                    f"message {header['msg_id']} is dated {-age:.1f} s ahead, more than "
                    f"the {self.max_skew} s clocks may differ"
                )
        identities: tuple[bytes, ...] = ()
        if index:
            identities = tuple(frames[:index])
            for identity in identities:
                if type(identity) is not bytes:
                    identities = tuple(bytes(i) for i in identities)
                    break
        buffers: tuple[bytes, ...] = ()
        if n > 5:
            buffers = tuple(b if type(b) is bytes else bytes(b) for b in frames[index + 6 :])
        return make_message(
            header, parent_header, metadata, content, buffers, identities, serializer
        )
