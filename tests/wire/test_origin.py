"""Origin: who caused a transmitted frame, in a frame's content and a batch's."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest

from rovbus.errors import EnvelopeError
from rovbus.wire.canframe import CanFrame, batch_content, frames_from_batch
from rovbus.wire.origin import ID_MAX, REASON_MAX, Origin

ALICE = Origin("alice", "msg-a", 1_700_000_000.5, "session-a", "operator", "")
BOB = Origin("bob", "msg-b", 1_700_000_001.0, "session-b")


def tx(arbitration_id: int, origin: Origin | None, data: bytes = b"\x01") -> CanFrame:
    return CanFrame("can0", arbitration_id, data, timestamp=1.0, direction="tx", origin=origin)


def test_a_request_header_makes_an_origin_cut_to_bounded_lengths() -> None:
    header = {"username": "u" * 1000, "msg_id": "m" * 1000, "session": 7, "date": "x"}
    origin = Origin.of_request(header, at=5.0, key="k" * 100, reason="r" * 1000)
    assert (len(origin.by), len(origin.msg_id), len(origin.key)) == (ID_MAX, ID_MAX, ID_MAX)
    assert origin.session == ""  # not text: left out
    assert len(origin.reason) == REASON_MAX
    assert origin.requested


def test_the_node_own_origin_has_no_request_and_says_why() -> None:
    origin = Origin.own("propulsion", "lease expired", at=3.0)
    assert not origin.requested
    assert origin.to_content() == {
        "by": "propulsion",
        "msg_id": "",
        "at": 3.0,
        "reason": "lease expired",
    }
    assert origin.describe() == "by node propulsion (lease expired)"


def test_describe_escapes_what_a_client_wrote_that_is_not_printable() -> None:
    origin = Origin("eve\x1b[2J\nroot", "m1", 1.0)
    assert origin.describe() == "by eve\\x1b[2J\\nroot msg m1"
    assert ALICE.describe() == "by alice key operator msg msg-a"


def test_a_frame_content_carries_its_origin_and_reads_back() -> None:
    frame = tx(0x123, ALICE)
    content = frame.to_content()
    assert content["origin"] == {
        "by": "alice",
        "msg_id": "msg-a",
        "at": 1_700_000_000.5,
        "session": "session-a",
        "key": "operator",
    }
    wire = msgpack.unpackb(msgpack.packb(content, use_bin_type=True), raw=False)
    back = CanFrame.from_content(wire)
    assert back == frame
    assert back.origin == ALICE


def test_a_frame_without_origin_has_no_origin_key_and_reads_as_before() -> None:
    content = tx(0x123, None).to_content()
    assert "origin" not in content
    assert CanFrame.from_content(content).origin is None


def test_origin_is_not_part_of_the_frame_value() -> None:
    assert tx(0x123, ALICE) == tx(0x123, BOB) == tx(0x123, None)
    assert hash(tx(0x123, ALICE)) == hash(tx(0x123, None))
    assert dataclasses.replace(tx(0x123, ALICE), timestamp=2.0).origin == ALICE


@pytest.mark.parametrize(
    ("origin", "field"),
    [
        ({"by": 1, "msg_id": "m", "at": 1.0}, "'by'"),
        ({"by": "a", "msg_id": "m"}, "'at'"),
        ({"by": "a", "msg_id": "m", "at": float("nan")}, "'at'"),
        ({"by": "a", "msg_id": "m", "at": 1.0, "reason": b"x"}, "'reason'"),
        ("alice", "expected a map"),
    ],
)
def test_a_bad_origin_names_its_field(origin: object, field: str) -> None:
    content = {**tx(0x123, None).to_content(), "origin": origin}
    with pytest.raises(EnvelopeError, match=field):
        CanFrame.from_content(content)


def test_a_batch_carries_one_origin_per_run_of_frames() -> None:
    frames = [
        CanFrame("can0", 0x100, b"\x00"),  # received: no origin
        tx(0x200, ALICE),
        tx(0x201, ALICE),
        tx(0x300, BOB),
        tx(0x202, ALICE),
    ]
    content = batch_content("can0", frames)
    assert [run[:2] for run in content["origins"]] == [[1, 2], [3, 1], [4, 1]]
    back = frames_from_batch(msgpack.unpackb(msgpack.packb(content), raw=False))
    assert back == frames
    assert [f.origin for f in back] == [None, ALICE, ALICE, BOB, ALICE]


def test_a_batch_without_origins_reads_as_before() -> None:
    content = batch_content("can0", [CanFrame("can0", 0x100, b"\x00")])
    assert "origins" not in content
    assert frames_from_batch(content)[0].origin is None


@pytest.mark.parametrize(
    ("origins", "match"),
    [
        ([[0, 3, ALICE.to_content()]], "not among the 2 frames"),
        ([[0, 2, ALICE.to_content()], [1, 1, BOB.to_content()]], r"origins\[1\].*overlap"),
        ([[0, 0, ALICE.to_content()]], "count"),
        ([[0, 1]], r"\[first, count, origin\]"),
        ([[0, 1, {"by": "a"}]], r"origins\[0\]: origin: field 'msg_id'|field 'at'"),
        ("runs", "expected a list"),
    ],
)
def test_bad_batch_origins_are_refused_naming_the_run(origins: object, match: str) -> None:
    content = batch_content("can0", [tx(0x1, None), tx(0x2, None)])
    content["origins"] = origins
    with pytest.raises(EnvelopeError, match=match):
        frames_from_batch(content)
