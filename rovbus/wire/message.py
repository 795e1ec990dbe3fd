"""The decoded message and its header.

A ``Message`` is what travels in one Jupyter envelope: routing identities (on pub, the
topic), the header, the parent's header, metadata, content and raw buffers. It also
remembers which serializer it was (or will be) written with, so a reply goes out in the
form its request came in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rovbus import __version__
from rovbus.errors import EnvelopeError
from rovbus.wire.serializers import Serializer

PROTOCOL_VERSION = "5.3"

#: The header fields every message must carry, all strings.
HEADER_FIELDS = ("msg_id", "session", "username", "date", "msg_type", "version")


@dataclass(frozen=True, slots=True)
class Message:
    header: dict[str, Any]
    parent_header: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    content: dict[str, Any] = field(default_factory=dict)
    buffers: tuple[bytes, ...] = ()
    identities: tuple[bytes, ...] = ()
    serializer: Serializer = field(default=Serializer.MSGPACK, compare=False)

    @property
    def msg_type(self) -> str:
        value: str = self.header["msg_type"]
        return value

    @property
    def msg_id(self) -> str:
        value: str = self.header["msg_id"]
        return value

    @property
    def topic(self) -> str:
        """The pub topic: the first identity frame as text ("" when there is none)."""
        return self.identities[0].decode("utf-8", "replace") if self.identities else ""


#: (whole second, "YYYY-MM-DDTHH:MM:SS.") of the last date formatted: a sender stamps many
#: messages a second, and ``time.gmtime`` plus its formatting is most of the cost.
_date_cache: tuple[int, str] = (-1, "")


_SLOTS = ("header", "parent_header", "metadata", "content", "buffers", "identities", "serializer")
_SETTERS = tuple(getattr(Message, name).__set__ for name in _SLOTS)


def make_message(
    header: dict[str, Any],
    parent_header: dict[str, Any],
    metadata: dict[str, Any],
    content: dict[str, Any],
    buffers: tuple[bytes, ...],
    identities: tuple[bytes, ...],
    serializer: Serializer,
) -> Message:
    """``Message(...)`` with every field given, at half the cost of the frozen ``__init__``.

    It fills the slots through their descriptors; the codec builds two messages per
    message sent and received, so this shows in its throughput.
    """
    message: Message = object.__new__(Message)
    s0, s1, s2, s3, s4, s5, s6 = _SETTERS
    s0(message, header)
    s1(message, parent_header)
    s2(message, metadata)
    s3(message, content)
    s4(message, buffers)
    s5(message, identities)
    s6(message, serializer)
    return message


def format_date(epoch: float) -> str:
    """UTC ISO 8601 with exactly six fractional digits and ``Z``."""
    global _date_cache
    seconds, micros = divmod(round(epoch * 1_000_000), 1_000_000)
    cached_seconds, prefix = _date_cache
    if seconds != cached_seconds:
        t = time.gmtime(seconds)
        prefix = (
            f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}."
        )
        _date_cache = (seconds, prefix)
    return f"{prefix}{micros:06d}Z"


def parse_date(text: str) -> float:
    """Epoch seconds of an ISO 8601 date; ``EnvelopeError`` if it is not one."""
    from datetime import UTC, datetime

    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise EnvelopeError(f"header.date {text!r} is not an ISO 8601 date") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def check_header(header: dict[str, Any]) -> None:
    """Raise ``EnvelopeError`` naming the first missing or mistyped header field."""
    get = header.get
    if (
        type(get("msg_id")) is str
        and type(get("session")) is str
        and type(get("username")) is str
        and type(get("date")) is str
        and type(get("msg_type")) is str
        and type(get("version")) is str
    ):
        return
    for name in HEADER_FIELDS:
        value = get(name)
        if value is None:
            raise EnvelopeError(f"header.{name} is missing")
        if not isinstance(value, str):
            raise EnvelopeError(f"header.{name} is {type(value).__name__}, expected a string")


def reply_type(request_type: str) -> str:
    """``stats_request`` -> ``stats_reply``, as Jupyter names replies."""
    return request_type.removesuffix("_request") + "_reply"


def kernel_info_content(implementation: str, banner: str) -> dict[str, Any]:
    """A ``kernel_info_reply``'s content that jupyter_client accepts (node and forwarder)."""
    return {
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": implementation,
        "implementation_version": __version__,
        "language_info": {
            "name": "rovbus",
            "version": __version__,
            "mimetype": "text/plain",
            "file_extension": ".txt",
        },
        "banner": banner,
        "help_links": [],
    }


def error_content(exc: BaseException) -> dict[str, Any]:
    """A failed request's reply content, in Jupyter's error form."""
    name = type(exc).__name__
    return {"status": "error", "ename": name, "evalue": str(exc), "traceback": [f"{name}: {exc}"]}
