#!/usr/bin/env python3
"""Coverage-guided fuzzing of everything that reads bytes off the wire (issue 7).

An atheris (libFuzzer) target for long runs. Each input is turned, through
``atheris.FuzzedDataProvider``, into a multipart frame list (raw byte strings, sometimes
with the ``<IDS|MSG>`` delimiter; valid encoded messages, mutated and sometimes re-signed;
or valid envelopes around hostile CAN content) and a line of can-utils text, and fed to

* ``Codec.decode`` without a key, with a key, and with a key and ``max_age``;
* ``CanFrame.from_content`` and ``frames_from_batch`` on whatever content decoded;
* ``parse_cansend`` and ``parse_candump`` on the text;
* ``peek_header``.

The contract: only ``rovbus.errors.WireError`` subclasses may escape (for the text parsers
that is ``FrameSyntaxError``); anything else is a crash. A message that decodes must
re-encode and decode to an equal message; a CAN frame that parses must survive its own
content dict (and its cansend text) unchanged.

::

    .venv/bin/pip install -e ".[fuzz]"
    .venv/bin/python tools/fuzz_envelope.py -max_total_time=60     # libFuzzer flags pass through
    .venv/bin/python tools/fuzz_envelope.py corpus/ -max_total_time=3600 -jobs=2
    .venv/bin/python tools/fuzz_envelope.py --selftest             # no atheris needed

``--selftest`` runs the target over the built-in seeds with a small stand-in for the data
provider, so CI can check that the file imports and the target holds on known inputs.
"""

from __future__ import annotations

import contextlib
import functools
import math
import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any

try:
    import atheris
except ImportError:  # --selftest runs without it
    atheris = None

_SELFTEST = "--selftest" in sys.argv[1:]

with (
    atheris.instrument_imports()
    if atheris is not None and not _SELFTEST
    else contextlib.nullcontext()
):
    from rovbus.errors import WireError
    from rovbus.transport.channel import peek_header
    from rovbus.wire.canframe import CanFrame, batch_content, frames_from_batch
    from rovbus.wire.cantext import format_candump, format_cansend, parse_candump, parse_cansend
    from rovbus.wire.codec import DELIMITER, Codec
    from rovbus.wire.message import Message
    from rovbus.wire.serializers import Serializer

KEY = b"fuzz-key-0123456789abcdef"
NOW = 1_700_000_000.0
MAX_AGE = 30.0


def _clock() -> float:
    return NOW


class Crash(AssertionError):
    """The contract was broken; libFuzzer reports it with the input that did it."""


# -- a stand-in for atheris.FuzzedDataProvider (only what the target uses) ---------------


class _Provider:
    """Enough of ``atheris.FuzzedDataProvider`` for ``--selftest``; not byte-compatible."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def remaining_bytes(self) -> int:
        return len(self._data) - self._pos

    def ConsumeBytes(self, count: int) -> bytes:
        out = self._data[self._pos : self._pos + max(count, 0)]
        self._pos += len(out)
        return out

    def ConsumeIntInRange(self, lo: int, hi: int) -> int:
        span = hi - lo + 1
        width = max(1, (span.bit_length() + 7) // 8)
        raw = int.from_bytes(self.ConsumeBytes(width), "little")
        return lo + raw % span

    def ConsumeBool(self) -> bool:
        return bool(self.ConsumeIntInRange(0, 1))

    def ConsumeRegularFloat(self) -> float:
        raw = self.ConsumeBytes(8).ljust(8, b"\0")
        value: float = struct.unpack("<d", raw)[0]
        return value if math.isfinite(value) else 0.0


# -- building inputs ---------------------------------------------------------------------

_ODD_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1,
    8,
    9,
    64,
    0x7FF,
    0x800,
    0x1FFFFFFF,
    0x20000000,
    2**63,
    -(2**63) - 1,
    0.0,
    -0.0,
    1.5,
    -1.0,
    1e308,
    "",
    "rx",
    "tx",
    "can0",
    "\ud800",
    b"",
    b"\x00" * 8,
    b"\x00" * 9,
    b"\x00" * 12,
    b"\x00" * 64,
    b"\x00" * 65,
    [],
    {},
    {"$bytes": "00"},
    [1.0, 0x123, 0, b"\x01"],
)


#: byte strings spliced into frames: JSON escapes and constants, msgpack type bytes
_TOKENS: tuple[bytes, ...] = (
    b"\\ud800",
    b"\\u0000",
    b'"$bytes"',
    b'{"$bytes":"zz"}',
    b"NaN",
    b"1e999",
    b"-0",
    b"[[[[[[[[",
    b"\xc1",
    b"\xc7\x01\x05",
    b"\xcb\x7f\xf8\x00\x00\x00\x00\x00\x00",
    b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff",
    b"\x81\x01\x02",
    DELIMITER,
)


def _value(fdp: Any, good: Any) -> Any:
    """Mostly ``good``, sometimes an odd value, sometimes an integer or bytes from the input."""
    choice = fdp.ConsumeIntInRange(0, 7)
    if choice <= 3:
        return good
    if choice <= 5:
        return _ODD_VALUES[fdp.ConsumeIntInRange(0, len(_ODD_VALUES) - 1)]
    if choice == 6:
        return fdp.ConsumeIntInRange(-(2**31), 2**31)
    return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 70))


def _frame_content(fdp: Any) -> dict[str, Any]:
    frame = CanFrame(
        "can0",
        fdp.ConsumeIntInRange(0, 0x7FF),
        fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8)),
        timestamp=NOW,
    )
    content = frame.to_content()
    for key in list(content):
        if fdp.ConsumeIntInRange(0, 3) == 0:
            content[key] = _value(fdp, content[key])
    if fdp.ConsumeIntInRange(0, 7) == 0:
        del content[list(content)[fdp.ConsumeIntInRange(0, len(content) - 1)]]
    return content


def _batch_content(fdp: Any) -> dict[str, Any]:
    frames = [
        CanFrame("can0", fdp.ConsumeIntInRange(0, 0x7FF), fdp.ConsumeBytes(2), timestamp=NOW)
        for _ in range(fdp.ConsumeIntInRange(0, 3))
    ]
    content = batch_content("can0", frames)
    for entry in content["frames"]:
        for i in range(4):
            if fdp.ConsumeIntInRange(0, 3) == 0:
                entry[i] = _value(fdp, entry[i])
    for key in ("bus", "frames"):
        if fdp.ConsumeIntInRange(0, 7) == 0:
            content[key] = _value(fdp, content[key])
    return content


def _content(fdp: Any) -> dict[str, Any]:
    kind = fdp.ConsumeIntInRange(0, 3)
    if kind == 0:
        return _frame_content(fdp)
    if kind == 1:
        return _batch_content(fdp)
    if kind == 2:
        return {"text": _value(fdp, "x"), "n": _value(fdp, 1), "nested": [_value(fdp, {})]}
    return {}


def _resign(frames: list[bytes]) -> None:
    """Give mutated frames a valid signature, so the keyed codecs read past the check."""
    with contextlib.suppress(ValueError):
        i = frames.index(DELIMITER)
        if len(frames) - i - 1 >= 5:
            frames[i + 1] = Codec(KEY).signer.sign(frames[i + 2 : i + 6])


def _mutate(fdp: Any, frames: list[bytes]) -> None:
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        op = fdp.ConsumeIntInRange(0, 8)
        at = fdp.ConsumeIntInRange(0, max(len(frames) - 1, 0))
        if op == 0 and frames:  # flip a byte
            f = bytearray(frames[at])
            if f:
                f[fdp.ConsumeIntInRange(0, len(f) - 1)] ^= fdp.ConsumeIntInRange(1, 255)
            frames[at] = bytes(f)
        elif op == 1 and frames:  # truncate
            frames[at] = frames[at][: fdp.ConsumeIntInRange(0, len(frames[at]))]
        elif op == 2 and frames:  # replace with input bytes
            frames[at] = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
        elif op == 3:  # insert a delimiter
            frames.insert(at, DELIMITER)
        elif op == 4 and frames:  # drop a frame
            del frames[at]
        elif op == 5 and frames:  # duplicate a frame
            frames.insert(at, frames[at])
        elif op == 6 and frames:  # splice input bytes into a frame
            f = frames[at]
            cut = fdp.ConsumeIntInRange(0, len(f))
            frames[at] = f[:cut] + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 16)) + f[cut:]
        elif op == 7 and frames:  # splice a token the decoders treat specially
            f = frames[at]
            cut = fdp.ConsumeIntInRange(0, len(f))
            frames[at] = f[:cut] + _TOKENS[fdp.ConsumeIntInRange(0, len(_TOKENS) - 1)] + f[cut:]
        else:  # append a buffer
            frames.append(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 16)))


def _frames(fdp: Any) -> list[bytes]:
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 0:  # raw byte strings, sometimes with the delimiter among them
        frames = [
            fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 48))
            for _ in range(fdp.ConsumeIntInRange(0, 8))
        ]
        if fdp.ConsumeBool():
            frames.insert(fdp.ConsumeIntInRange(0, len(frames)), DELIMITER)
        return frames
    serializer = Serializer.JSON if fdp.ConsumeBool() else Serializer.MSGPACK
    sender = Codec(KEY if fdp.ConsumeBool() else b"", clock=_clock, session="fuzz")
    identities = [fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 12))] if fdp.ConsumeBool() else []
    msg_type = "can_frame" if fdp.ConsumeBool() else "can_batch"
    try:
        frames = sender.encode_new(msg_type, _content(fdp), identities, serializer)
    except WireError:  # the content holds what the serializer cannot write: fine
        return []
    if mode == 1:  # a valid message, mutated, sometimes signed again
        _mutate(fdp, frames)
        if fdp.ConsumeBool():
            _resign(frames)
    return frames


def _text(fdp: Any) -> str:
    raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40))
    if fdp.ConsumeBool():  # mostly characters the parsers look at
        alphabet = "0123456789abcdefABCDEF#R.()_ \t\rT\n##can0"
        return "".join(alphabet[b % len(alphabet)] for b in raw)
    text: str = raw.decode("utf-8", "replace")
    return text


# -- the checks --------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Equality that takes NaN as equal to NaN (msgpack carries NaN; NaN != NaN)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _messages_equal(a: Message, b: Message) -> bool:
    return all(
        _same(getattr(a, name), getattr(b, name))
        for name in ("header", "parent_header", "metadata", "content", "buffers", "identities")
    )


def _guarded(what: str, call: Callable[[], Any]) -> Any:
    """``call()``; None if it raised a WireError; Crash for any other exception."""
    try:
        return call()
    except WireError:
        return None
    except Exception as exc:
        raise Crash(f"{what} raised {type(exc).__name__}: {exc!r}") from exc


def _check_roundtrip(message: Message, key: bytes) -> None:
    again = _guarded("Codec.encode of a decoded message", lambda: Codec(key).encode(message))
    if again is None:
        raise Crash(f"a decoded message does not re-encode: {message!r:.600}")
    back = _guarded("Codec.decode of a re-encoded message", lambda: Codec(key).decode(again))
    if back is None:
        raise Crash(f"a re-encoded message does not decode: {again!r:.600}")
    if not _messages_equal(message, back):
        raise Crash(f"re-encoding changed the message:\n  {message!r:.600}\n  {back!r:.600}")


def _check_content(content: Any) -> None:
    frame = _guarded("CanFrame.from_content", lambda: CanFrame.from_content(content))
    if frame is not None:
        back = _guarded("CanFrame.from_content", lambda: CanFrame.from_content(frame.to_content()))
        if back != frame:
            raise Crash(f"CanFrame content round trip changed {frame!r} into {back!r}")
    frames = _guarded("frames_from_batch", lambda: frames_from_batch(content))
    if frames:
        bus = frames[0].bus
        back = _guarded("frames_from_batch", lambda: frames_from_batch(batch_content(bus, frames)))
        if back != frames:
            raise Crash(f"batch round trip changed {frames!r:.300} into {back!r:.300}")


def _check_text(text: str) -> None:
    frame = _guarded("parse_cansend", lambda: parse_cansend(text, "can0"))
    if frame is not None:
        again = _guarded("parse_cansend", lambda: parse_cansend(format_cansend(frame), "can0"))
        if again != frame:
            raise Crash(f"cansend {text!r} parsed to {frame!r}, its own text to {again!r}")
    frame = _guarded("parse_candump", lambda: parse_candump(text))
    if frame is not None and frame.bus.isprintable():
        # format_candump writes microseconds: compare the rest exactly
        line = format_candump(frame, with_direction=True)
        again = _guarded("parse_candump", lambda: parse_candump(line))
        if again is None or (
            round(again.timestamp * 1e6) != round(frame.timestamp * 1e6)
            or again.to_content() | {"ts": 0.0} != frame.to_content() | {"ts": 0.0}
        ):
            raise Crash(f"candump {text!r} parsed to {frame!r}, {line!r} to {again!r}")


def check(frames: Sequence[bytes], text: str) -> None:
    """Run every reader over ``frames`` and ``text``; raise Crash on a broken contract."""
    decoders = (
        (b"", Codec(clock=_clock)),
        (KEY, Codec(KEY, clock=_clock)),
        (KEY, Codec(KEY, clock=_clock, max_age=MAX_AGE)),
    )
    for key, codec in decoders:
        message = _guarded("Codec.decode", functools.partial(codec.decode, frames))
        if message is not None:
            _check_roundtrip(message, key)
            _check_content(message.content)
    _guarded("peek_header", lambda: peek_header(frames))
    _check_text(text)


def fuzz_one_input(data: bytes, provider: Callable[[bytes], Any] | None = None) -> None:
    fdp = (provider or atheris.FuzzedDataProvider)(data)
    frames = _frames(fdp)
    check(frames, _text(fdp))


# -- seeds and entry point ---------------------------------------------------------------


def _seed_cases() -> list[tuple[list[bytes], str]]:
    """Known inputs for --selftest: valid and broken envelopes, valid and broken text."""
    plain, keyed = Codec(clock=_clock, session="seed"), Codec(KEY, clock=_clock, session="seed")
    frame = CanFrame("can0", 0x123, b"\xde\xad\xbe\xef", timestamp=NOW)
    ok = plain.encode_new("can_frame", frame.to_content(), [b"can/can0"])
    signed = keyed.encode_new("can_batch", batch_content("can0", [frame, frame]))
    as_json = plain.encode_new("can_frame", frame.to_content(), (), Serializer.JSON)
    return [
        (ok, "123#DEADBEEF"),
        (signed, "1F334455##1AABB"),
        (as_json, "(1700000000.123456) can0 123#R4 T"),
        (ok[:-1], "123#"),
        ([*signed[:2], b"forged", *signed[3:]], "12#"),
        ([DELIMITER, b"", b"\xc1", b"\x80", b"\x80", b"\x80"], "20000004#0004"),
        ([DELIMITER, b"", b"{", b"{}", b"{}", b"{}"], "(1) x 1#"),
        ([DELIMITER], "((("),
        ([], ""),
        (as_json, "123#_"),
    ]


def selftest() -> int:
    cases = _seed_cases()
    failures = 0
    for frames, text in cases:
        try:
            check(frames, text)
        except Crash as exc:
            failures += 1
            print(f"FAIL {text!r}: {exc}", file=sys.stderr)
    for seed in (b"", b"\x00" * 64, bytes(range(256)), b"\xff" * 300, b"rovbus" * 50):
        try:
            fuzz_one_input(seed, _Provider)
        except Crash as exc:
            failures += 1
            print(f"FAIL seed {seed[:16]!r}: {exc}", file=sys.stderr)
    total = len(cases) + 5
    print(f"selftest: {total - failures}/{total} inputs held the contract")
    return 1 if failures else 0


def main() -> int:
    if _SELFTEST:
        return selftest()
    if atheris is None:
        print("atheris is not installed: pip install -e '.[fuzz]', or use --selftest")
        return 2
    atheris.Setup(sys.argv, fuzz_one_input)
    atheris.Fuzz()
    return 0


if __name__ == "__main__":
    sys.exit(main())
