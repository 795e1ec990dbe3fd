"""The two serializers of the four dict frames: msgpack (default) and JSON.

msgpack keeps ``bytes`` as bytes. JSON has no bytes type, so a ``bytes`` value travels as
the one-key object ``{"$bytes": "<lowercase hex>"}`` and comes back as ``bytes``. A
receiver tells the two apart by the first byte of the header frame: a JSON object starts
with ``{``, a msgpack map with 0x80-0x8f, 0xde or 0xdf.
"""

from __future__ import annotations

import enum
import json
from typing import Any

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


def pack(obj: dict[str, Any], serializer: Serializer) -> bytes:
    """Serialize one dict frame. Raises ``EnvelopeError`` for values it cannot write."""
    try:
        if serializer is Serializer.MSGPACK:
            packed: bytes = _MSGPACK_PACKER.pack(obj)
            return packed
        return _JSON_ENCODER.encode(obj).encode("utf-8")
    except (TypeError, ValueError, OverflowError) as exc:
        # A failed Packer.pack leaves its buffer dirty; reset it for the next caller.
        _MSGPACK_PACKER.reset()
        raise EnvelopeError(f"cannot serialize as {serializer}: {exc}") from None


def _reject_ext(code: int, data: bytes) -> Any:
    raise ValueError(f"msgpack extension type {code} is not allowed")


def unpack(frame: bytes, serializer: Serializer, what: str) -> dict[str, Any]:
    """Deserialize one dict frame named ``what``; anything but a dict is an ``EnvelopeError``."""
    try:
        if serializer is Serializer.MSGPACK:
            obj = msgpack.unpackb(frame, raw=False, ext_hook=_reject_ext)
        else:
            obj = json.loads(frame, object_hook=_json_object_hook)
    except Exception as exc:  # msgpack and json raise a zoo of types for bad input
        raise EnvelopeError(f"{what} frame is not valid {serializer}: {exc}") from None
    if not isinstance(obj, dict):
        raise EnvelopeError(f"{what} frame holds {type(obj).__name__}, expected a map")
    return obj


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
