"""CanFrame: validation, content dict, batch content and python-can conversion."""

from __future__ import annotations

import contextlib
import dataclasses
import subprocess
import sys
from typing import Any

import can
import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rovbus.errors import EnvelopeError
from rovbus.wire.canframe import (
    FD_LENGTHS,
    FLAG_BRS,
    FLAG_ERR,
    FLAG_ESI,
    FLAG_EXT,
    FLAG_FD,
    FLAG_RTR,
    FLAG_TX,
    CanFrame,
    batch_content,
    frames_from_batch,
)

BUS_NAMES = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=8)


@st.composite
def can_frames(draw: st.DrawFn, bus: str | None = None, micros: bool = False) -> CanFrame:
    """Any frame a CAN controller could carry. ``micros``: timestamps on whole microseconds."""
    ext = draw(st.booleans())
    aid = draw(st.integers(0, 0x1FFFFFFF if ext else 0x7FF))
    kind = draw(st.sampled_from(["data", "remote", "error", "fd", "fd-error"]))
    if micros:
        ts = draw(st.integers(0, 2_000_000_000_000_000)) / 1_000_000
    else:
        ts = draw(st.floats(0.0, 4e9, allow_nan=False, allow_infinity=False))
    common: dict[str, Any] = {
        "bus": draw(BUS_NAMES) if bus is None else bus,
        "arbitration_id": aid,
        "is_extended_id": ext,
        "timestamp": ts,
        "direction": draw(st.sampled_from(["rx", "tx"])),
    }
    if kind == "remote":
        return CanFrame(**common, is_remote_frame=True, dlc=draw(st.integers(0, 8)))
    if kind in ("fd", "fd-error"):
        size = draw(st.sampled_from(sorted(FD_LENGTHS)))
        return CanFrame(
            **common,
            data=draw(st.binary(min_size=size, max_size=size)),
            is_fd=True,
            is_error_frame=kind == "fd-error",
            bitrate_switch=draw(st.booleans()),
            error_state_indicator=draw(st.booleans()),
        )
    return CanFrame(**common, data=draw(st.binary(max_size=8)), is_error_frame=kind == "error")


FD_FRAME = CanFrame(
    "can1", 0x123, bytes(range(12)), is_fd=True, bitrate_switch=True, error_state_indicator=True
)
REMOTE = CanFrame("can0", 0x7FF, is_remote_frame=True, dlc=4, timestamp=1700000000.5)
ERROR = CanFrame("can0", 0x004, b"\x00\x04" + bytes(6), is_error_frame=True)
EXTENDED = CanFrame("nmea", 0x18FEF100, b"\x01\x02\x03", is_extended_id=True, direction="tx")
EXAMPLES = [FD_FRAME, REMOTE, ERROR, EXTENDED]
FIELDS = ["bus", "id", "ext", "rtr", "err", "fd", "brs", "esi", "dlc", "data", "ts", "dir"]


# -- construction and validation ------------------------------------------------------------


def test_dlc_is_derived_from_data_and_zero_for_remote_frames() -> None:
    assert CanFrame("can0", 1, b"\x01\x02").dlc == 2
    assert CanFrame("can0", 1, is_remote_frame=True).dlc == 0
    assert REMOTE.dlc == 4


def test_frames_are_frozen_hashable_values_and_bytearray_data_becomes_bytes() -> None:
    frame = CanFrame("can0", 1, bytearray(b"\x01"))  # type: ignore[arg-type]
    assert type(frame.data) is bytes
    assert frame == CanFrame("can0", 1, b"\x01")
    assert len({frame, CanFrame("can0", 1, b"\x01")}) == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        frame.arbitration_id = 2  # type: ignore[misc]
    # replace() builds a new frame through the same checks
    assert dataclasses.replace(frame, direction="tx").direction == "tx"
    with pytest.raises(ValueError, match="arbitration_id"):
        dataclasses.replace(frame, arbitration_id=0x800)


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"arbitration_id": 0x800}, "arbitration_id"),
        ({"arbitration_id": -1}, "arbitration_id"),
        ({"arbitration_id": 0x20000000, "is_extended_id": True}, "arbitration_id"),
        ({"data": bytes(9)}, "data"),
        ({"data": bytes(9), "is_fd": True}, "data"),
        ({"data": bytes(65), "is_fd": True}, "data"),
        ({"bitrate_switch": True}, "bitrate_switch"),
        ({"error_state_indicator": True}, "error_state_indicator"),
        ({"is_remote_frame": True, "is_fd": True}, "is_remote_frame"),
        ({"is_remote_frame": True, "is_error_frame": True}, "is_remote_frame"),
        ({"is_remote_frame": True, "data": b"\x01"}, "data"),
        ({"is_remote_frame": True, "dlc": 9}, "dlc"),
        ({"data": b"\x01", "dlc": 2}, "dlc"),
        ({"timestamp": -1.0}, "timestamp"),
        ({"timestamp": float("nan")}, "timestamp"),
        ({"timestamp": float("inf")}, "timestamp"),
        ({"direction": "up"}, "direction"),
        ({"data": "0102"}, "data"),
    ],
)
def test_invalid_frames_raise_value_error_naming_the_field(
    kwargs: dict[str, Any], named: str
) -> None:
    args: dict[str, Any] = {"bus": "can0", "arbitration_id": 0x100, **kwargs}
    with pytest.raises(ValueError, match=f"invalid CanFrame {named}: "):
        CanFrame(**args)


def test_every_fd_length_is_accepted_and_no_other() -> None:
    for size in range(65):
        if size in FD_LENGTHS:
            assert CanFrame("can0", 1, bytes(size), is_fd=True).dlc == size
        else:
            with pytest.raises(ValueError, match="CAN FD frame carries"):
                CanFrame("can0", 1, bytes(size), is_fd=True)


# -- content dict -----------------------------------------------------------------------------


def test_content_has_the_documented_field_names_and_types() -> None:
    assert EXTENDED.to_content() == {
        "bus": "nmea",
        "id": 0x18FEF100,
        "ext": True,
        "rtr": False,
        "err": False,
        "fd": False,
        "brs": False,
        "esi": False,
        "dlc": 3,
        "data": b"\x01\x02\x03",
        "ts": 0.0,
        "dir": "tx",
    }


@pytest.mark.parametrize("frame", EXAMPLES)
def test_examples_round_trip_through_content(frame: CanFrame) -> None:
    assert CanFrame.from_content(frame.to_content()) == frame


@given(can_frames())
def test_any_frame_round_trips_through_content_and_msgpack(frame: CanFrame) -> None:
    assert CanFrame.from_content(frame.to_content()) == frame
    packed = msgpack.packb(frame.to_content())
    assert CanFrame.from_content(msgpack.unpackb(packed)) == frame


def test_content_ts_may_be_an_int_and_unknown_keys_are_ignored() -> None:
    content = {**REMOTE.to_content(), "ts": 1700000000, "future": [1, 2]}
    frame = CanFrame.from_content(content)
    assert frame.timestamp == 1700000000.0
    assert type(frame.timestamp) is float


@pytest.mark.parametrize("field", FIELDS)
def test_missing_content_field_is_named(field: str) -> None:
    content = EXTENDED.to_content()
    del content[field]
    with pytest.raises(EnvelopeError, match=f"missing field '{field}'"):
        CanFrame.from_content(content)


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("bus", b"can0", "expected a string, got bytes"),
        ("id", True, "expected an integer, got bool"),
        ("id", 1.0, "expected an integer, got float"),
        ("id", 0x20000000, "29-bit range"),
        ("ext", 1, "expected a boolean, got int"),
        ("rtr", None, "expected a boolean, got NoneType"),
        ("err", "false", "expected a boolean, got str"),
        ("fd", 0, "expected a boolean, got int"),
        ("brs", 1, "expected a boolean, got int"),
        ("brs", True, "bitrate switch needs a CAN FD frame"),
        ("esi", 0.0, "expected a boolean, got float"),
        ("dlc", False, "expected an integer, got bool"),
        ("dlc", 4, "differs from the data length 3"),
        ("dlc", -1, "not a length"),
        ("data", "010203", "expected bytes, got str"),
        ("data", [1, 2, 3], "expected bytes, got list"),
        ("data", bytes(9), "at most 8 bytes"),
        ("ts", "now", "expected a number, got str"),
        ("ts", True, "expected a number, got bool"),
        ("ts", -5.0, "epoch seconds >= 0"),
        ("dir", "sideways", "expected 'rx' or 'tx'"),
        ("dir", 1, "expected 'rx' or 'tx'"),
    ],
)
def test_bad_content_field_is_named(field: str, value: object, says: str) -> None:
    content = {**EXTENDED.to_content(), field: value}
    with pytest.raises(EnvelopeError, match=f"field '{field}'") as info:
        CanFrame.from_content(content)
    assert says in str(info.value)


def test_content_that_is_not_a_map_is_an_envelope_error() -> None:
    with pytest.raises(EnvelopeError, match="must be a map, got list"):
        CanFrame.from_content([1, 2])  # type: ignore[arg-type]


JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=8,
)
# Recursive junk can be slow to draw on a cold start; that is not what these tests check.
junk_settings = settings(suppress_health_check=[HealthCheck.too_slow])


@junk_settings
@given(can_frames(), st.dictionaries(st.sampled_from(FIELDS), JUNK, max_size=3))
def test_corrupted_content_gives_a_frame_or_envelope_error_only(
    frame: CanFrame, changes: dict[str, Any]
) -> None:
    with contextlib.suppress(EnvelopeError):
        CanFrame.from_content({**frame.to_content(), **changes})


@junk_settings
@given(JUNK)
def test_junk_content_raises_only_envelope_error(junk: Any) -> None:
    with pytest.raises(EnvelopeError):
        CanFrame.from_content(junk)


# -- batch --------------------------------------------------------------------------------------


def test_batch_layout_and_flag_bits() -> None:
    frames = [
        CanFrame("can0", 0x7FF, is_remote_frame=True, dlc=5, direction="tx", timestamp=1.5),
        CanFrame("can0", 0x1ABCDEF, b"\xaa", is_extended_id=True, is_error_frame=True),
        CanFrame("can0", 1, bytes(12), is_fd=True, bitrate_switch=True, error_state_indicator=True),
    ]
    assert batch_content("can0", frames) == {
        "bus": "can0",
        "frames": [
            [1.5, 0x7FF, FLAG_RTR | FLAG_TX | 5 << 8, b""],
            [0.0, 0x1ABCDEF, FLAG_EXT | FLAG_ERR, b"\xaa"],
            [0.0, 1, FLAG_FD | FLAG_BRS | FLAG_ESI, bytes(12)],
        ],
    }
    assert (FLAG_EXT, FLAG_RTR, FLAG_ERR, FLAG_FD, FLAG_BRS, FLAG_ESI, FLAG_TX) == (
        1,
        2,
        4,
        8,
        16,
        32,
        64,
    )


@given(st.lists(can_frames(bus="can3"), max_size=20))
def test_any_frames_round_trip_through_batch_and_msgpack(frames: list[CanFrame]) -> None:
    content = batch_content("can3", frames)
    assert frames_from_batch(content) == frames
    assert frames_from_batch(msgpack.unpackb(msgpack.packb(content))) == frames


def test_batch_refuses_frames_of_another_bus() -> None:
    with pytest.raises(ValueError, match="batch for bus 'can0' got a frame of bus 'can1'"):
        batch_content("can0", [CanFrame("can0", 1), CanFrame("can1", 2)])


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ([0.0, 1, 0], "frames[1]: expected [ts, id, flags, data]"),
        ("abcd", "frames[1]: expected [ts, id, flags, data]"),
        (["0", 1, 0, b""], "frames[1] field 'ts': expected a number, got str"),
        ([0.0, True, 0, b""], "frames[1] field 'id': expected an integer, got bool"),
        ([0.0, 0x800, 0, b""], "frames[1] field 'id': 0x800 is outside the 11-bit range"),
        ([0.0, 1, 0.0, b""], "frames[1] field 'flags': expected an integer, got float"),
        ([0.0, 1, 0x80, b""], "frames[1] field 'flags': unknown bits in 0x80"),
        ([0.0, 1, 0x10000, b""], "frames[1] field 'flags': unknown bits"),
        ([0.0, 1, -1, b""], "frames[1] field 'flags': unknown bits"),
        ([0.0, 1, 3 << 8, b""], "frames[1] field 'flags': dlc bits set on a data frame"),
        ([0.0, 1, FLAG_RTR | 9 << 8, b""], "frames[1] field 'flags': a remote frame requests"),
        ([0.0, 1, FLAG_BRS, b""], "frames[1] field 'flags': bitrate switch needs"),
        ([0.0, 1, 0, "00"], "frames[1] field 'data': expected bytes, got str"),
        ([0.0, 1, 0, bytes(9)], "frames[1] field 'data': a classic CAN frame carries"),
        ([-1.0, 1, 0, b""], "frames[1] field 'ts'"),
    ],
)
def test_bad_batch_entry_is_named_by_index(entry: Any, says: str) -> None:
    content = {"bus": "can0", "frames": [[0.0, 1, 0, b""], entry]}
    with pytest.raises(EnvelopeError) as info:
        frames_from_batch(content)
    assert says in str(info.value)


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ({"frames": []}, "missing field 'bus'"),
        ({"bus": "can0"}, "missing field 'frames'"),
        ({"bus": 0, "frames": []}, "field 'bus': expected a string"),
        ({"bus": "can0", "frames": {}}, "field 'frames': expected a list"),
        ([], "must be a map"),
    ],
)
def test_bad_batch_content_is_named(content: Any, says: str) -> None:
    with pytest.raises(EnvelopeError, match=says):
        frames_from_batch(content)


@junk_settings
@given(st.dictionaries(st.sampled_from(["bus", "frames"]), JUNK) | JUNK)
def test_junk_batch_gives_frames_or_envelope_error_only(junk: Any) -> None:
    with contextlib.suppress(EnvelopeError):
        frames_from_batch(junk)


# -- python-can ---------------------------------------------------------------------------------


@pytest.mark.parametrize("frame", EXAMPLES)
def test_can_message_carries_every_field(frame: CanFrame) -> None:
    msg = frame.to_can_message()
    assert isinstance(msg, can.Message)
    assert msg.arbitration_id == frame.arbitration_id
    assert msg.is_extended_id == frame.is_extended_id
    assert msg.is_remote_frame == frame.is_remote_frame
    assert msg.is_error_frame == frame.is_error_frame
    assert msg.is_fd == frame.is_fd
    assert msg.bitrate_switch == frame.bitrate_switch
    assert msg.error_state_indicator == frame.error_state_indicator
    assert msg.dlc == frame.dlc
    assert bytes(msg.data) == frame.data
    assert msg.timestamp == frame.timestamp
    assert msg.channel == frame.bus
    assert msg.is_rx == (frame.direction == "rx")
    assert CanFrame.from_can_message(msg, frame.bus) == frame


@settings(deadline=None)
@given(can_frames())
def test_any_frame_round_trips_through_can_message(frame: CanFrame) -> None:
    assert CanFrame.from_can_message(frame.to_can_message(), frame.bus) == frame


def test_from_can_message_takes_bus_and_direction_from_arguments() -> None:
    msg = can.Message(arbitration_id=0x123, is_extended_id=False, data=b"\x01", channel=0)
    frame = CanFrame.from_can_message(msg, "can7")
    assert (frame.bus, frame.direction) == ("can7", "rx")
    assert CanFrame.from_can_message(msg, "can7", direction="tx").direction == "tx"
    msg.is_rx = False
    assert CanFrame.from_can_message(msg, "can7").direction == "tx"


def test_from_can_message_rejects_what_no_controller_sends() -> None:
    msg = can.Message(arbitration_id=0x123, is_extended_id=False, data=b"\x01", dlc=3)
    with pytest.raises(ValueError, match="dlc 3 differs from the data length 1"):
        CanFrame.from_can_message(msg, "can0")


def test_importing_the_wire_modules_does_not_import_python_can() -> None:
    code = (
        "import sys, rovbus.wire.canframe, rovbus.wire.cantext, rovbus.wire.topics;"
        "print('can' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
