"""The two serializers of the four dict frames: msgpack (default) and JSON.

msgpack keeps ``bytes`` as bytes. JSON has no bytes type, so a ``bytes`` value travels as
the one-key object ``{"$bytes": "<lowercase hex>"}`` and comes back as ``bytes``. A
receiver tells the two apart by the first byte of the header frame: a JSON object starts
with ``{``, a msgpack map with 0x80-0x8f, 0xde or 0xdf.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable
from json.scanner import make_scanner
from typing import Any, cast

import msgpack

from rovbus.errors import EnvelopeError

BYTES_KEY = "$bytes"


class Serializer(enum.StrEnum):
    """How the header, parent_header, metadata and content frames are written."""

    MSGPACK = "msgpack"
    JSON = "json"


def _json_default(value: object) -> object:
    if isinstance(value, bytes | bytearray | memoryview):
        return {BYTES_KEY: bytes(value).hex()}
    raise TypeError(f"{type(value).__name__} is not serializable")


def _json_object_hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and BYTES_KEY in obj:
        text = obj[BYTES_KEY]
        if not isinstance(text, str):
            raise ValueError(f"{BYTES_KEY} holds {type(text).__name__}, expected a hex string")
        return bytes.fromhex(text)
    return obj


_JSON_ENCODER = json.JSONEncoder(
    default=_json_default, ensure_ascii=False, allow_nan=False, separators=(",", ":")
)
_MSGPACK_PACKER = msgpack.Packer(use_bin_type=True, autoreset=True)


def pack_msgpack(obj: dict[str, Any]) -> bytes:
    """One dict frame as msgpack. Raises ``EnvelopeError`` for values it cannot write."""
    try:
        packed: bytes = _MSGPACK_PACKER.pack(obj)
    except (TypeError, ValueError, OverflowError) as exc:
        # A failed Packer.pack leaves its buffer dirty; reset it for the next caller.
        _MSGPACK_PACKER.reset()
        raise EnvelopeError(f"cannot serialize as msgpack: {exc}") from None
    return packed


def pack_json(obj: dict[str, Any]) -> bytes:
    """One dict frame as compact UTF-8 JSON, bytes as ``{"$bytes": hex}``."""
    try:
        return _JSON_ENCODER.encode(obj).encode("utf-8")
    except (TypeError, ValueError, OverflowError) as exc:
        raise EnvelopeError(f"cannot serialize as json: {exc}") from None


def pack(obj: dict[str, Any], serializer: Serializer) -> bytes:
    """Serialize one dict frame. Raises ``EnvelopeError`` for values it cannot write."""
    return pack_msgpack(obj) if serializer is Serializer.MSGPACK else pack_json(obj)


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# The C scanners behind json.loads, called directly: json.loads would also sniff the
# encoding of bytes and run two whitespace regexes. The plain scanner serves frames that
# cannot spell a "$bytes" key, so the Python object hook runs only where it may matter.
# (typeshed types make_scanner's argument as a make_scanner; it takes the decoder's settings.)
_JSON_SCANNER = make_scanner(cast(Any, json.JSONDecoder(parse_constant=_reject_constant)))
_JSON_BYTES_SCANNER = make_scanner(
    cast(Any, json.JSONDecoder(object_hook=_json_object_hook, parse_constant=_reject_constant))
)
_EMPTY_MSGPACK = b"\x80"
_EMPTY_JSON = b"{}"


def _loads_json(frame: bytes) -> Any:
    text = frame.decode("utf-8")
    # A JSON string can only spell "$bytes" literally or with a \u escape.
    scan = _JSON_BYTES_SCANNER if b"$bytes" in frame or b"\\u" in frame else _JSON_SCANNER
    try:
        obj, end = scan(text, 0)
    except StopIteration:
        obj, end = None, -1
    if end != len(text):  # leading or trailing whitespace or junk: let json.loads judge
        return json.loads(
            text,
            object_hook=_json_object_hook if scan is _JSON_BYTES_SCANNER else None,
            parse_constant=_reject_constant,
        )
    return obj


def unpack_msgpack(frame: bytes, what: str) -> dict[str, Any]:
    """One msgpack dict frame named ``what``; anything but a map is an ``EnvelopeError``."""
    if frame == _EMPTY_MSGPACK:
        return {}
    try:
        obj = msgpack.unpackb(frame, raw=False, ext_hook=_reject_ext)
    except Exception as exc:  # msgpack raises a zoo of types for bad input
        raise EnvelopeError(f"{what} frame is not valid msgpack: {exc}") from None
    if type(obj) is not dict:
        raise EnvelopeError(f"{what} frame holds {type(obj).__name__}, expected a map")
    return obj


def unpack_json(frame: bytes, what: str) -> dict[str, Any]:
    """One JSON dict frame named ``what``; anything but an object is an ``EnvelopeError``."""
    if frame == _EMPTY_JSON:
        return {}
    try:
        obj = _loads_json(frame)
    except Exception as exc:  # json, bytes.fromhex and UTF-8 decoding all raise their own
        raise EnvelopeError(f"{what} frame is not valid json: {exc}") from None
    if type(obj) is not dict:
        raise EnvelopeError(f"{what} frame holds {type(obj).__name__}, expected a map")
    if b"\\u" in frame:
        # A \u escape can spell a lone surrogate, which JSON's decoder accepts but no UTF-8
        # text can hold: such a message could be received but never sent on.
        try:
            _JSON_ENCODER.encode(obj).encode("utf-8")
        except UnicodeEncodeError:
            raise EnvelopeError(f"{what} frame holds a lone surrogate (\\uD800-\\uDFFF)") from None
    return obj


def unpack(frame: bytes, serializer: Serializer, what: str) -> dict[str, Any]:
    """Deserialize one dict frame named ``what``; anything but a dict is an ``EnvelopeError``."""
    if serializer is Serializer.MSGPACK:
        return unpack_msgpack(frame, what)
    return unpack_json(frame, what)


#: The pack function of each serializer, for callers that pick once.
PACKERS: dict[Serializer, Callable[[dict[str, Any]], bytes]] = {
    Serializer.MSGPACK: pack_msgpack,
    Serializer.JSON: pack_json,
}


def detect(header_frame: bytes) -> Serializer:
    """Tell the serializer from the first byte of the header frame."""
    if not header_frame:
        raise EnvelopeError("header frame is empty")
    first = header_frame[0]
    if first == 0x7B:  # "{"
        return Serializer.JSON
    if 0x80 <= first <= 0x8F or first in (0xDE, 0xDF):
        return Serializer.MSGPACK
    raise EnvelopeError(
        f"header frame starts with byte 0x{first:02x}: neither a JSON object nor a msgpack map"
    )
