"""can-utils text forms: cansend arguments, candump -L lines, and the real captures."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Callable
from pathlib import Path

import can
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rovbus.errors import FrameSyntaxError, WireError
from rovbus.wire.canframe import CanFrame
from rovbus.wire.cantext import format_candump, format_cansend, parse_candump, parse_cansend
from tests.helpers.data import CAN_CAPTURES
from tests.helpers.frames import assert_holds

from .test_canframe import can_frames

CAPTURES = sorted(CAN_CAPTURES.glob("*.log"))


def _attempt(parse: Callable[[str], CanFrame], text: str) -> CanFrame | FrameSyntaxError:
    """The parsed frame, or the FrameSyntaxError (any other exception propagates)."""
    try:
        return parse(text)
    except FrameSyntaxError as error:
        return error


def _frame(**kw: object) -> CanFrame:
    return CanFrame(**{"bus": "", "arbitration_id": 0x123, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "frame", "canonical"),
    [
        ("123#DEADBEEF", _frame(data=b"\xde\xad\xbe\xef"), "123#DEADBEEF"),
        ("123#deadbeef", _frame(data=b"\xde\xad\xbe\xef"), "123#DEADBEEF"),
        (
            "1F334455#11.22.33",
            _frame(arbitration_id=0x1F334455, is_extended_id=True, data=b"\x11\x22\x33"),
            "1F334455#112233",
        ),
        ("123#.11.22.", _frame(data=b"\x11\x22"), "123#1122"),
        ("123#", _frame(), "123#"),
        ("00000123#", _frame(is_extended_id=True), "00000123#"),
        ("123#R", _frame(is_remote_frame=True), "123#R"),
        ("123#r0", _frame(is_remote_frame=True), "123#R"),
        ("123#R4", _frame(is_remote_frame=True, dlc=4), "123#R4"),
        ("7FF#R8", _frame(arbitration_id=0x7FF, is_remote_frame=True, dlc=8), "7FF#R8"),
        ("123##1AABB", _frame(is_fd=True, bitrate_switch=True, data=b"\xaa\xbb"), "123##1AABB"),
        ("123##2", _frame(is_fd=True, error_state_indicator=True), "123##2"),
        (
            "123##3" + "11" * 64,
            _frame(is_fd=True, bitrate_switch=True, error_state_indicator=True, data=b"\x11" * 64),
            "123##3" + "11" * 64,
        ),
        ("123##5AA", _frame(is_fd=True, bitrate_switch=True, data=b"\xaa"), "123##1AA"),
        (
            "20000004#0004000000000000",
            _frame(arbitration_id=4, is_error_frame=True, data=b"\x00\x04" + bytes(6)),
            "20000004#0004000000000000",
        ),
        (
            "20000800#00",
            _frame(arbitration_id=0x800, is_extended_id=True, is_error_frame=True, data=b"\0"),
            "20000800#00",
        ),
    ],
)
def test_cansend_examples(text: str, frame: CanFrame, canonical: str) -> None:
    assert parse_cansend(text) == frame
    assert format_cansend(frame) == canonical
    assert parse_cansend(canonical, bus="can9") == dataclasses.replace(frame, bus="can9")


def _as_parsed(frame: CanFrame, **kw: object) -> CanFrame:
    """What text can say about ``frame``: an error frame's ext flag follows its ID's size."""
    ext = frame.arbitration_id > 0x7FF if frame.is_error_frame else frame.is_extended_id
    return dataclasses.replace(frame, is_extended_id=ext, **kw)  # type: ignore[arg-type]


@given(can_frames())
def test_any_frame_round_trips_through_cansend_text(frame: CanFrame) -> None:
    text = format_cansend(frame)
    parsed = parse_cansend(text, frame.bus)
    assert parsed == _as_parsed(frame, timestamp=0.0, direction="rx")
    assert format_cansend(parsed) == text


@given(can_frames(micros=True))
def test_any_frame_round_trips_through_candump_lines(frame: CanFrame) -> None:
    line = format_candump(frame)
    assert parse_candump(line) == _as_parsed(frame, direction="rx")
    assert format_candump(parse_candump(line)) == line
    marked = format_candump(frame, with_direction=True)
    assert marked == f"{line} {'R' if frame.direction == 'rx' else 'T'}"
    assert parse_candump(marked) == _as_parsed(frame)


def test_candump_line_format() -> None:
    frame = CanFrame("can0", 0x123, b"\xde\xad\xbe\xef", timestamp=1700000000.123456)
    assert format_candump(frame) == "(1700000000.123456) can0 123#DEADBEEF"
    assert format_candump(frame, "vcan1") == "(1700000000.123456) vcan1 123#DEADBEEF"
    fd = CanFrame("can0", 0x123, b"\xaa\xbb", is_fd=True, bitrate_switch=True, timestamp=0.5)
    assert format_candump(fd) == "(0000000000.500000) can0 123##1AABB"
    remote = CanFrame("can0", 0x1ABCDE, is_extended_id=True, is_remote_frame=True, dlc=2)
    assert format_candump(remote) == "(0000000000.000000) can0 001ABCDE#R2"
    with pytest.raises(ValueError, match="candump channel"):
        format_candump(frame, "can 0")
    with pytest.raises(ValueError, match="candump channel"):
        format_candump(CanFrame("", 1))


def test_candump_reads_python_can_log_writer_output() -> None:
    frames = [
        CanFrame("can0", 0x123, b"\x01\x02", timestamp=12.25, direction="tx"),
        CanFrame("can0", 0x1ABCDEF, b"", is_extended_id=True, timestamp=13.0),
        CanFrame(
            "can0", 0x10, b"\x01" * 12, is_fd=True, error_state_indicator=True, timestamp=14.0
        ),
    ]
    out = io.StringIO()
    writer = can.CanutilsLogWriter(out)
    for frame in frames:
        writer.on_message_received(frame.to_can_message())
    lines = out.getvalue().splitlines()
    assert lines[0] == "(12.250000) can0 123#0102 T"
    assert [parse_candump(line) for line in lines] == frames


@pytest.mark.parametrize(
    ("text", "position", "says"),
    [
        ("12G#00", 2, "expected a hex digit"),
        ("12#00", 2, "a CAN ID has 3 or 8"),
        ("1234#00", 4, "expected a hex digit"),
        ("123X#00", 3, "expected a hex digit or '#'"),
        ("123456789#00", 8, "expected '#' after the 8-digit CAN ID"),
        ("123", 3, "expected '#' after the CAN ID"),
        ("", 0, "expected '#' after the CAN ID"),
        ("800#00", 0, "11-bit CAN ID (at most 7FF)"),
        ("40000000#00", 0, "29-bit CAN ID"),
        ("123#0G", 5, "expected a second hex digit"),
        ("123#1", 5, "expected a second hex digit"),
        ("123#11..22", 7, "expected a hex digit"),
        ("123#11 22", 6, "expected a hex digit"),
        ("123#112233445566778899", 20, "at most 8 bytes"),
        ("123#11.22.33.44.55.66.77.88.99", 28, "at most 8 bytes"),
        ("123#1122334455667788_E", 20, "'_' len8_dlc"),
        ("123#R9", 5, "remote DLC digit 0-8"),
        ("123#R_9", 5, "'_' len8_dlc"),
        ("123#R8_9", 6, "'_' len8_dlc"),
        ("123#R12", 6, "the end after the remote DLC"),
        ("20000004#R", 9, "an error frame cannot be remote"),
        ("123##", 5, "FD flags nibble"),
        ("123##X00", 5, "FD flags nibble"),
        ("123###00", 5, "CAN XL"),
        ("123##800", 5, "FD flags 0-7"),
        ("123##0" + "00" * 9, 24, "CAN FD frame, not 9"),
        ("123##0" + "00" * 65, 134, "at most 64 bytes"),
    ],
)
def test_cansend_errors_point_at_the_bad_character(text: str, position: int, says: str) -> None:
    with pytest.raises(FrameSyntaxError) as info:
        parse_cansend(text)
    error = info.value
    assert (error.text, error.position) == (text, position)
    assert says in error.problem
    headline, shown, caret = str(error).split("\n")
    assert headline == f"bad CAN frame {text!r}: {error.problem} at position {position}"
    assert shown == f"  {text}"
    assert caret == " " * (position + 2) + "^"


def test_frame_syntax_error_is_a_wire_and_value_error_with_the_documented_message() -> None:
    with pytest.raises(FrameSyntaxError) as info:
        parse_cansend("12G#00")
    assert isinstance(info.value, WireError)
    assert isinstance(info.value, ValueError)
    assert str(info.value) == (
        "bad CAN frame '12G#00': expected a hex digit at position 2\n  12G#00\n    ^"
    )


@pytest.mark.parametrize(
    ("line", "position", "says"),
    [
        ("1700000000.0) can0 123#00", 0, "expected '('"),
        ("(1700000000.0 can0 123#00", 13, "expected a digit of the timestamp"),
        ("(1700000000.0", 13, "expected ')'"),
        ("(1700.00.0) can0 123#00", 8, "expected a digit of the timestamp"),
        ("() can0 123#00", 1, "expected a digit of the timestamp"),
        ("(1.) can0 123#00", 3, "expected a digit of the timestamp"),
        ("(1.0)can0 123#00", 5, "expected a space after the timestamp"),
        ("(1.0) can0", 10, "expected a CAN frame after the channel name"),
        ("(1.0) can0 123#00 X", 18, "expected the end of the line or a direction R or T"),
        ("(1.0) can0 123#00 R T", 18, "expected the end of the line or a direction R or T"),
        ("(1.0) can0 123#0G", 16, "expected a second hex digit"),
        ("(1.0) can0 12G#00", 13, "expected a hex digit"),
    ],
)
def test_candump_errors_point_into_the_line(line: str, position: int, says: str) -> None:
    with pytest.raises(FrameSyntaxError) as info:
        parse_candump(line)
    assert (info.value.text, info.value.position) == (line, position)
    assert says in info.value.problem


@given(st.text(max_size=30) | st.text(st.sampled_from("0123456789ABCDEFR#._rx"), max_size=30))
def test_any_text_parses_or_raises_frame_syntax_error_only(text: str) -> None:
    result = _attempt(parse_cansend, text)
    if isinstance(result, FrameSyntaxError):
        assert 0 <= result.position <= len(text)
    else:
        assert parse_cansend(format_cansend(result)) == result


@given(st.text(max_size=50) | st.text(st.sampled_from("() .0123456789can#ABRT"), max_size=50))
def test_any_line_parses_or_raises_frame_syntax_error_only(line: str) -> None:
    result = _attempt(parse_candump, line)
    if isinstance(result, FrameSyntaxError):
        assert 0 <= result.position <= len(result.text)


# -- the real captures ----------------------------------------------------------------------------


def test_the_captures_are_there() -> None:
    names = {Path(p).name for p in CAPTURES}
    assert "nmea2000-raymarine-autopilot.log" in names
    assert len(CAPTURES) >= 4


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: Path(p).name)
def test_every_capture_line_matches_python_can_and_formats_back_identically(path: Path) -> None:
    with open(path, newline="") as f:
        lines = [line.rstrip("\r\n") for line in f if line.strip()]
    with can.LogReader(path) as reader:
        messages = list(reader)
    assert len(messages) == len(lines)
    parsed = 0
    for line, msg in zip(lines, messages, strict=True):
        frame = _attempt(parse_candump, line)
        if isinstance(frame, FrameSyntaxError):
            # sleipner-thruster.log holds 13-byte payloads written as classic frames
            # (reassembled NMEA 2000 fast packets): no CAN controller sends those, and
            # python-can's own check agrees.
            assert "a classic CAN frame carries at most 8 bytes" in frame.problem, line
            assert not msg.is_fd
            assert msg.dlc > 8
            with pytest.raises(ValueError, match="DLC"):
                can.Message(arbitration_id=msg.arbitration_id, data=msg.data, check=True)
            continue
        parsed += 1
        assert format_candump(frame) == line
        assert frame.bus == msg.channel
        assert frame.timestamp == msg.timestamp
        assert_holds(frame, msg)
        assert frame == CanFrame.from_can_message(msg, str(msg.channel))
    assert parsed > len(lines) // 2
