"""Comparing rovbus's ``CanFrame`` with the python-can message it was made of."""

from __future__ import annotations

import can

from rovbus.wire.canframe import CanFrame

#: the fields a CanFrame and a can.Message share, by the same name
SHARED_FIELDS = (
    "arbitration_id",
    "is_extended_id",
    "is_remote_frame",
    "is_error_frame",
    "is_fd",
    "bitrate_switch",
    "error_state_indicator",
    "dlc",
)


def assert_holds(frame: CanFrame, msg: can.Message) -> None:
    """``frame`` carries everything ``msg`` does: each shared field and the data bytes."""
    for field in SHARED_FIELDS:
        assert getattr(frame, field) == getattr(msg, field), (field, frame, msg)
    assert frame.data == bytes(msg.data), (frame, msg)
