"""can-utils text forms of a CAN frame: cansend's argument and candump's ``-L`` log lines.

::

    123#DEADBEEF          11-bit data frame (3 hex digits); '.' may separate bytes
    1F334455#11.22.33     29-bit data frame (8 hex digits)
    123#R   123#R4        remote frame, optionally with the requested length 0-8
    123##1AABB            CAN FD: the nibble after '##' is the flags (brs=1, esi=2)
    20000004#0004...      error frame: 8 digits with the error flag 0x20000000

    (1700000000.123456) can0 123#DEADBEEF       candump -L: timestamp, channel, frame

Bad text raises :class:`~rovbus.errors.FrameSyntaxError` pointing at the bad character.
An error frame's text has no extended flag: it parses as 11-bit when its error class
fits 11 bits (as the kernel reports it), 29-bit otherwise.
"""

from __future__ import annotations

from rovbus.errors import FrameSyntaxError
from rovbus.wire.canframe import FD_LENGTHS, CanFrame, Direction

__all__ = ["format_candump", "format_cansend", "parse_candump", "parse_cansend"]

_HEX = {c: int(c, 16) for c in "0123456789abcdefABCDEF"}
_ERR_FLAG = 0x20000000
_MAX_SFF = 0x7FF
_MAX_EFF = 0x1FFFFFFF
_CANFD_BRS = 0x1
_CANFD_ESI = 0x2
_CANFD_FDF = 0x4  # set by Linux >= 6.2 on every FD frame; accepted and implied by '##'
_WS = " \t"
_LEN8 = "unsupported '_' len8_dlc suffix (DLC 9-15 of an 8-byte classic frame)"


def parse_cansend(text: str, bus: str = "") -> CanFrame:
    """Parse cansend's frame argument, e.g. ``123#DEADBEEF`` or ``1F334455##1AABB``.

    Raises ``FrameSyntaxError`` naming what was expected and where.
    """
    return _parse_frame(text, 0, len(text), bus, 0.0, "rx")


def format_cansend(frame: CanFrame) -> str:
    """The cansend/candump form of ``frame``: upper-case hex, no '.' separators."""
    if frame.is_error_frame:
        head = f"{frame.arbitration_id | _ERR_FLAG:08X}#"
    elif frame.is_extended_id:
        head = f"{frame.arbitration_id:08X}#"
    else:
        head = f"{frame.arbitration_id:03X}#"
    if frame.is_remote_frame:
        return f"{head}R{frame.dlc}" if frame.dlc else f"{head}R"
    if frame.is_fd:
        flags = frame.bitrate_switch | frame.error_state_indicator << 1
        return f"{head}#{flags:X}{frame.data.hex().upper()}"
    return head + frame.data.hex().upper()


def format_candump(
    frame: CanFrame, channel: str | None = None, *, with_direction: bool = False
) -> str:
    """One candump ``-L`` log line (no newline): ``(1700000000.123456) can0 123#DEADBEEF``.

    ``channel`` defaults to ``frame.bus``. ``with_direction`` appends `` R`` or `` T``
    as candump ``-x`` and python-can's log writer do.
    """
    ch = frame.bus if channel is None else channel
    if not ch or not ch.isprintable() or " " in ch:
        raise ValueError(f"candump channel {ch!r} must be non-empty, printable, without spaces")
    sec, usec = divmod(round(frame.timestamp * 1_000_000), 1_000_000)
    line = f"({sec:010d}.{usec:06d}) {ch} {format_cansend(frame)}"
    if with_direction:
        return f"{line} {'R' if frame.direction == 'rx' else 'T'}"
    return line


def parse_candump(line: str) -> CanFrame:
    """Parse one candump ``-L`` log line; the channel becomes ``bus``.

    A trailing newline is ignored, and so is a trailing `` R``/`` T`` direction mark
    after it has set ``direction``. Raises ``FrameSyntaxError`` pointing into the line.
    """
    s = line.rstrip("\r\n")
    n = len(s)
    i = _skip_ws(s, 0)
    if i >= n or s[i] != "(":
        raise FrameSyntaxError(s, i, "expected '(' opening the timestamp")
    j = i + 1
    dot = False
    while j < n and s[j] != ")":
        c = s[j]
        if c == "." and not dot and j > i + 1:
            dot = True
        elif not "0" <= c <= "9":
            raise FrameSyntaxError(s, j, "expected a digit of the timestamp")
        j += 1
    if j >= n:
        raise FrameSyntaxError(s, n, "expected ')' closing the timestamp")
    if j == i + 1 or s[j - 1] == ".":
        raise FrameSyntaxError(s, j, "expected a digit of the timestamp")
    ts = float(s[i + 1 : j])
    k = j + 1
    if k >= n or s[k] not in _WS:
        raise FrameSyntaxError(s, k, "expected a space after the timestamp")
    k = _skip_ws(s, k)
    start = k
    while k < n and s[k] not in _WS:
        k += 1
    channel = s[start:k]
    if not channel:
        raise FrameSyntaxError(s, k, "expected the channel name")
    k = _skip_ws(s, k)
    if k >= n:
        raise FrameSyntaxError(s, k, "expected a CAN frame after the channel name")
    start = k
    while k < n and s[k] not in _WS:
        k += 1
    end = k
    k = _skip_ws(s, k)
    direction: Direction = "rx"
    if k < n:
        if s[k] in "RrTt" and _skip_ws(s, k + 1) == n:
            direction = "tx" if s[k] in "Tt" else "rx"
        else:
            raise FrameSyntaxError(s, k, "expected the end of the line or a direction R or T")
    return _parse_frame(s, start, end, channel, ts, direction)


def _skip_ws(s: str, i: int) -> int:
    n = len(s)
    while i < n and s[i] in _WS:
        i += 1
    return i


def _parse_frame(
    text: str, start: int, end: int, bus: str, ts: float, direction: Direction
) -> CanFrame:
    """Parse ``text[start:end]``; errors carry positions in ``text``."""
    # -- the ID: 3 hex digits (11-bit) or 8 (29-bit, or an error frame), then '#'
    i = start
    while i < end and text[i] != "#":
        k = i - start
        if k == 8:
            raise FrameSyntaxError(text, i, "expected '#' after the 8-digit CAN ID")
        if text[i] not in _HEX:
            expected = "a hex digit or '#'" if k == 3 else "a hex digit"
            raise FrameSyntaxError(text, i, f"expected {expected}")
        i += 1
    k = i - start
    if i >= end:
        raise FrameSyntaxError(text, i, "expected '#' after the CAN ID")
    if k != 3 and k != 8:
        raise FrameSyntaxError(text, i, "expected a hex digit (a CAN ID has 3 or 8)")
    value = int(text[start:i], 16)
    err = False
    if k == 3:
        if value > _MAX_SFF:
            raise FrameSyntaxError(text, start, "expected an 11-bit CAN ID (at most 7FF)")
        ext = False
    else:
        if value > _MAX_EFF | _ERR_FLAG:
            raise FrameSyntaxError(
                text, start, "expected a 29-bit CAN ID (at most 1FFFFFFF, 2xxxxxxx: error frame)"
            )
        err = bool(value & _ERR_FLAG)
        value &= _MAX_EFF
        ext = not err or value > _MAX_SFF
    p = i + 1

    # -- remote frame: R, optionally the requested length
    if p < end and text[p] in "Rr":
        if err:
            raise FrameSyntaxError(text, p, "expected data (an error frame cannot be remote)")
        q = p + 1
        dlc = 0
        if q < end:
            c = text[q]
            if c == "_":
                raise FrameSyntaxError(text, q, _LEN8)
            if not "0" <= c <= "8":
                raise FrameSyntaxError(text, q, "expected a remote DLC digit 0-8 or the end")
            dlc = ord(c) - 48
            q += 1
            if q < end:
                problem = _LEN8 if text[q] == "_" else "expected the end after the remote DLC"
                raise FrameSyntaxError(text, q, problem)
        return CanFrame(bus, value, b"", ext, True, False, False, False, False, dlc, ts, direction)

    # -- CAN FD: '##' and one flags nibble
    fd = brs = esi = False
    if p < end and text[p] == "#":
        fd = True
        q = p + 1
        if q < end and text[q] == "#":
            raise FrameSyntaxError(
                text, q, "expected the FD flags nibble (CAN XL is not supported)"
            )
        if q >= end or text[q] not in _HEX:
            raise FrameSyntaxError(text, q, "expected the FD flags nibble (brs=1, esi=2)")
        flags = _HEX[text[q]]
        if flags & ~(_CANFD_BRS | _CANFD_ESI | _CANFD_FDF):
            raise FrameSyntaxError(text, q, "expected FD flags 0-7 (brs=1, esi=2, fdf=4)")
        brs = bool(flags & _CANFD_BRS)
        esi = bool(flags & _CANFD_ESI)
        p = q + 1

    # -- data bytes
    segment = text[p:end]
    data: bytes | None = None
    if segment.isascii() and segment.isalnum():  # fast path: plain hex, no separators
        try:
            data = bytes.fromhex(segment)
        except ValueError:
            data = None
    if data is None:
        data = _slow_data(text, p, end, fd)
    n = len(data)
    if fd:
        if n > 64:  # only plain hex gets here: byte 64 starts at p + 128
            raise FrameSyntaxError(
                text, p + 128, "expected the end: a CAN FD frame carries at most 64 bytes"
            )
        if n not in FD_LENGTHS:
            raise FrameSyntaxError(
                text,
                end,
                f"expected 0-8, 12, 16, 20, 24, 32, 48 or 64 data bytes in a CAN FD frame, not {n}",
            )
    elif n > 8:
        raise FrameSyntaxError(  # only plain hex gets here: byte 8 starts at p + 16
            text, p + 16, "expected the end: a classic CAN frame carries at most 8 bytes ('##': FD)"
        )
    return CanFrame(bus, value, data, ext, False, err, fd, brs, esi, n, ts, direction)


def _slow_data(text: str, p: int, end: int, fd: bool) -> bytes:
    """Parse data with optional '.' separators, pointing at the first bad character."""
    out = bytearray()
    i = p
    while True:
        if i < end and text[i] == ".":
            i += 1
        if i >= end:
            return bytes(out)
        c = text[i]
        if c not in _HEX:
            problem = _LEN8 if c == "_" and not fd else "expected a hex digit"
            raise FrameSyntaxError(text, i, problem)
        if i + 1 >= end or text[i + 1] not in _HEX:
            raise FrameSyntaxError(text, i + 1, "expected a second hex digit of the byte")
        if len(out) == (64 if fd else 8):
            kind = (
                "a CAN FD frame carries at most 64"
                if fd
                else "a classic CAN frame carries at most 8"
            )
            raise FrameSyntaxError(text, i, f"expected the end: {kind} bytes")
        out.append(_HEX[c] << 4 | _HEX[text[i + 1]])
        i += 2
