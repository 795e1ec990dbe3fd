"""The envelope codec: round trips, signature rules, malformed input, and fuzzing."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rovbus.errors import EnvelopeError, SignatureError, WireError
from rovbus.wire.codec import DELIMITER, Codec, new_session_id, split_envelope
from rovbus.wire.message import Message, format_date, parse_date
from rovbus.wire.serializers import Serializer, pack, unpack
from rovbus.wire.signing import ReplayGuard, Signer, derive_key, hkdf

KEY = b"test-key-6c1f0a"
T0 = 1_700_000_000.25
FRAME = {
    "bus": "can0",
    "id": 0x0F3,
    "ext": False,
    "rtr": False,
    "err": False,
    "fd": False,
    "brs": False,
    "esi": False,
    "dlc": 8,
    "data": bytes(range(8)),
    "ts": T0,
    "dir": "rx",
}


class Clock:
    """A settable clock for ``Codec(clock=...)``: no sleeping in tests."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pair(key: bytes = KEY, scheme: str = "hmac-sha256", **receiver: Any) -> tuple[Codec, Codec]:
    """A sender and a receiver sharing a key."""
    sender = Codec(key, scheme, username="propulsion", clock=Clock())
    return sender, Codec(key, scheme, username="operator", **receiver)


SERIALIZERS = [Serializer.MSGPACK, Serializer.JSON]
KEYS = [b"", KEY]
SCHEMES = ["hmac-sha256", "hmac-sha512"]


# -- round trips --------------------------------------------------------------------------


@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("key", KEYS, ids=["unsigned", "signed"])
@pytest.mark.parametrize("scheme", SCHEMES)
def test_can_frame_round_trips(serializer: Serializer, key: bytes, scheme: str) -> None:
    sender, receiver = pair(key, scheme)
    sent = sender.message(
        "can_frame", FRAME, identities=[b"propulsion/can/can0/0F3"], serializer=serializer
    )
    frames = sender.encode(sent)
    assert frames[0] == b"propulsion/can/can0/0F3"
    assert frames[1] == DELIMITER
    assert len(frames) == 7
    if key:
        digest = hashlib.new(scheme.removeprefix("hmac-"))
        assert len(frames[2]) == 2 * digest.digest_size
        assert frames[2] == frames[2].lower()
    else:
        assert frames[2] == b""
    got = receiver.decode(frames)
    assert got == sent
    assert got.content["data"] == bytes(range(8))
    assert type(got.content["data"]) is bytes
    assert got.serializer is serializer
    assert got.topic == "propulsion/can/can0/0F3"
    assert receiver.encode(got)[3:] == frames[3:]  # same dict frames when sent on


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_everything_round_trips(serializer: Serializer) -> None:
    sender, receiver = pair()
    request = sender.message("node_info_request", serializer=serializer)
    sent = sender.message(
        "node_info_reply",
        {
            "name": "nävigation ⚓ 航海",
            "nested": {"list": [1, 2.5, None, True, "x", b"\x00\xff", {"deep": [b""]}]},
            "empty": {},
            "big": 2**62,
            "negative": -(2**40),
        },
        parent=request,
        metadata={"started": T0, "tags": ["a", "b"]},
        buffers=[b"\x00\x01", b"", b"buffer \xff"],
        identities=[b"\x00k\x8b\x45g", b"operator-1"],
        serializer=serializer,
    )
    frames = sender.encode(sent)
    assert frames[:3] == [b"\x00k\x8b\x45g", b"operator-1", DELIMITER]
    assert frames[-3:] == [b"\x00\x01", b"", b"buffer \xff"]
    got = receiver.decode(frames)
    assert got == sent
    assert got.parent_header == request.header
    assert got.buffers == (b"\x00\x01", b"", b"buffer \xff")
    assert got.identities == (b"\x00k\x8b\x45g", b"operator-1")
    assert got.content["nested"]["list"][5] == b"\x00\xff"
    assert got.content["name"] == "nävigation ⚓ 航海"


def test_json_writes_bytes_as_hex_objects_and_text_as_utf8() -> None:
    codec = Codec(serializer=Serializer.JSON)
    frames = codec.encode(codec.message("t", {"data": b"\x01\xab", "text": "ø"}))
    assert json.loads(frames[-1]) == {"data": {"$bytes": "01ab"}, "text": "ø"}
    assert "ø".encode() in frames[-1]  # not \\u escaped
    assert b" " not in frames[-1]  # compact separators


def test_reply_goes_back_by_the_request_route_in_its_serializer() -> None:
    node, operator = Codec(username="node"), Codec(username="operator")
    request = operator.message("stats_request", serializer=Serializer.JSON)
    received = node.decode([b"hop2", b"hop1", *operator.encode(request)])
    reply = node.reply(received, "stats_reply", {"status": "ok"})
    frames = node.encode(reply)
    assert frames[:2] == [b"hop2", b"hop1"]
    assert frames[4].startswith(b"{")
    got = operator.decode(frames[2:])
    assert got.parent_header == request.header
    assert got.content == {"status": "ok"}
    assert got.serializer is Serializer.JSON


def test_headers_carry_the_required_fields() -> None:
    codec = Codec(username="propulsion", session="s-1", clock=Clock(T0))
    first, second = codec.header("heartbeat"), codec.header("heartbeat")
    assert first["msg_id"] != second["msg_id"]
    assert first["msg_id"].startswith("s-1_")
    assert first["session"] == "s-1"
    assert first["username"] == "propulsion"
    assert first["date"] == "2023-11-14T22:13:20.250000Z"
    assert first["msg_type"] == "heartbeat"
    assert first["version"] == "5.3"


def test_session_ids_are_fresh_and_shaped_like_jupyters() -> None:
    a, b = new_session_id(), new_session_id()
    assert a != b
    assert len(a) == 33
    assert a[8] == "-"
    assert Codec().session != Codec().session


@pytest.mark.parametrize(
    ("epoch", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000000Z"),
        (T0, "2023-11-14T22:13:20.250000Z"),
        (1_700_000_000.000001, "2023-11-14T22:13:20.000001Z"),
        (1_700_000_000.9999996, "2023-11-14T22:13:21.000000Z"),
        (951_825_600.5, "2000-02-29T12:00:00.500000Z"),
    ],
)
def test_dates_have_six_fractional_digits_and_z(epoch: float, text: str) -> None:
    assert format_date(epoch) == text
    assert parse_date(text) == pytest.approx(epoch, abs=1e-6)


def test_dates_in_the_same_second_use_the_right_second() -> None:
    assert format_date(T0 + 0.5) == "2023-11-14T22:13:20.750000Z"
    assert format_date(T0 + 1) == "2023-11-14T22:13:21.250000Z"
    assert format_date(T0) == "2023-11-14T22:13:20.250000Z"


@given(st.floats(min_value=0, max_value=4_102_444_800, allow_nan=False))
def test_format_date_parses_back(epoch: float) -> None:
    text = format_date(epoch)
    assert len(text) == 27
    assert text.endswith("Z")
    assert text[19] == "."
    assert parse_date(text) == pytest.approx(epoch, abs=1e-6)


def test_unserializable_content_is_an_envelope_error() -> None:
    codec = Codec()
    with pytest.raises(EnvelopeError, match="cannot serialize as msgpack"):
        codec.encode(codec.message("t", {"x": object()}))
    with pytest.raises(EnvelopeError, match="cannot serialize as json"):
        codec.encode(codec.message("t", {"x": float("nan")}, serializer=Serializer.JSON))
    # the packer is clean again after a failure
    frames = codec.encode(codec.message("t", {"x": 1}))
    assert codec.decode(frames).content == {"x": 1}


# -- signatures ---------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", [*SCHEMES, "hmac-sha1", "hmac-md5"])
@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"long key " * 30])
def test_signature_is_the_hmac_hex_digest_of_the_four_dict_frames(scheme: str, key: bytes) -> None:
    codec = Codec(key, scheme)
    frames = codec.encode(codec.message("t", {"a": 1}, buffers=[b"not signed"]))
    name = scheme.removeprefix("hmac-")
    expected = hmac.new(key, b"".join(frames[2:6]), name).hexdigest().encode()
    assert frames[1] == expected


@pytest.mark.parametrize("scheme", ["sha256", "hmac-nope", "hmac-shake_128"])
def test_bad_signature_schemes_are_refused(scheme: str) -> None:
    with pytest.raises(ValueError, match="signature scheme"):
        Signer(KEY, scheme)


def test_unsigned_message_is_refused_with_a_key() -> None:
    sender = Codec()
    receiver = Codec(KEY)
    with pytest.raises(SignatureError, match=r"^unsigned message \(a key is configured\)$"):
        receiver.decode(sender.encode(sender.message("t")))


def test_a_signature_holds_only_over_the_four_dict_frames_it_signs() -> None:
    sender, receiver = pair()
    frames = sender.encode(sender.message("t", {"a": 1}, identities=[b"topic"]))
    assert receiver.signature_holds(frames)
    assert receiver.signature_holds(frames)  # not a decode: no replay check
    assert receiver.signature_holds([b"other topic", *frames[1:], b"a buffer"])
    for bad in (
        [*frames[:5], pack({"a": 2}, Serializer.MSGPACK)],  # content changed
        [*frames[:2], b"0" * 64, *frames[3:]],  # a made-up signature
        frames[:6],  # too few frames to check
        frames[2:],  # no delimiter
    ):
        assert not receiver.signature_holds(bad)
        assert Codec().signature_holds(bad)  # without a key anything may be answered


def test_signed_message_is_read_without_a_key() -> None:
    sender, _ = pair()
    assert Codec().decode(sender.encode(sender.message("t", {"a": 1}))).content == {"a": 1}


@pytest.mark.parametrize("frame", [3, 4, 5, 6], ids=["header", "parent", "metadata", "content"])
def test_tampered_frame_is_refused(frame: int) -> None:
    sender, receiver = pair()
    frames = sender.encode(sender.message("t", {"a": 1}, identities=[b"topic"]))
    frames[frame] = (
        frames[frame].replace(b"\x80", b"\x81\xa1z\x01")
        if frames[frame] == (b"\x80")
        else frames[frame][:-1] + bytes([frames[frame][-1] ^ 1])
    )
    with pytest.raises(SignatureError, match=r"^invalid signature$"):
        receiver.decode(frames)


def test_buffers_and_identities_are_not_signed() -> None:
    sender, receiver = pair()
    frames = sender.encode(sender.message("t", buffers=[b"one"], identities=[b"topic"]))
    got = receiver.decode([b"other topic", *frames[1:-1], b"two"])
    assert got.buffers == (b"two",)
    assert got.identities == (b"other topic",)


@pytest.mark.parametrize(("key", "scheme"), [(b"other key", "hmac-sha256"), (KEY, "hmac-sha512")])
def test_wrong_key_or_scheme_is_refused(key: bytes, scheme: str) -> None:
    sender, _ = pair()
    with pytest.raises(SignatureError, match="invalid signature"):
        Codec(key, scheme).decode(sender.encode(sender.message("t")))


def test_replayed_message_is_refused_the_second_time() -> None:
    sender, receiver = pair()
    guard = receiver.new_replay_guard()
    frames = sender.encode(sender.message("t", {"a": 1}))
    assert receiver.decode(frames, guard).content == {"a": 1}
    with pytest.raises(SignatureError, match=r"^replayed message \(signature already seen\)$"):
        receiver.decode(list(frames), guard)
    # a fresh message from the same sender is fine
    assert receiver.decode(sender.encode(sender.message("t", {"a": 1})), guard).content == {"a": 1}
    # what is remembered is the receiver's: without a guard, nothing is
    assert receiver.decode(frames).content == receiver.decode(frames).content == {"a": 1}


def test_forged_signature_is_not_recorded() -> None:
    """jupyter_client records a digest before checking it; rovbus must not."""
    sender, receiver = pair()
    guard = receiver.new_replay_guard()
    frames = sender.encode(sender.message("t", {"a": 1}))
    # the real signature on tampered content: refused, and the signature not remembered
    tampered = [*frames[:5], pack({"a": 2}, Serializer.MSGPACK)]
    with pytest.raises(SignatureError, match="invalid signature"):
        receiver.decode(tampered, guard)
    # a made-up signature: refused, not remembered either
    forged = [frames[0], b"0" * 64, *frames[2:]]
    with pytest.raises(SignatureError, match="invalid signature"):
        receiver.decode(forged, guard)
    assert len(guard) == 0
    assert receiver.decode(frames, guard).content == {"a": 1}


def test_replay_guard_keeps_the_newest_signatures() -> None:
    sender, receiver = pair(replay_window=3)
    guard = receiver.new_replay_guard()
    sent = [sender.encode(sender.message("t", {"n": n})) for n in range(4)]
    for frames in sent:
        receiver.decode(frames, guard)
    assert len(guard) == 3
    for frames in sent[1:]:
        with pytest.raises(SignatureError, match="replayed"):
            receiver.decode(frames, guard)
    # the oldest was evicted: a replay that old is no longer caught (that is what max_age is for)
    assert receiver.decode(sent[0], guard).content == {"n": 0}


def test_replay_guard_evicts_oldest_first() -> None:
    guard = ReplayGuard(2)
    assert guard.record(b"a") is True
    assert guard.record(b"b") is True
    assert guard.record(b"c") is True
    assert b"a" not in guard
    assert b"b" in guard
    assert b"c" in guard
    assert guard.record(b"b") is False
    assert len(guard) == 2
    one = ReplayGuard(1)  # replay_window = 1: the last one only
    assert (one.record(b"a"), one.record(b"a"), one.record(b"b"), one.record(b"a")) == (
        True,
        False,
        True,
        True,
    )
    with pytest.raises(ValueError, match="at least 1"):
        ReplayGuard(0)


def test_max_age_refuses_old_messages() -> None:
    clock = Clock(T0)
    sender = Codec(KEY, clock=Clock(T0))
    receiver = Codec(KEY, max_age=5.0, clock=clock)
    clock.now = T0 + 4.9
    assert receiver.decode(sender.encode(sender.message("t", {"n": 1}))).content == {"n": 1}
    clock.now = T0 + 5.0  # exactly max_age old: not older
    assert receiver.decode(sender.encode(sender.message("t", {"n": 1}))).content == {"n": 1}
    clock.now = T0 + 60
    with pytest.raises(SignatureError, match=r"older than 5\.0 s"):
        receiver.decode(sender.encode(sender.message("t", {"n": 2})))


def test_max_age_refuses_dates_ahead_beyond_max_skew() -> None:
    clock = Clock(T0)
    receiver = Codec(KEY, max_age=5.0, max_skew=1.0, clock=clock)
    for ahead, accepted in ((0.9, True), (1.0, True), (1.5, False), (365 * 86400.0, False)):
        sender = Codec(KEY, clock=Clock(T0 + ahead))
        frames = sender.encode(sender.message("t"))
        if accepted:
            receiver.decode(frames)
        else:
            ahead_text = rf"is dated {ahead:.1f} s ahead, more than the 1\.0 s clocks may differ$"
            with pytest.raises(SignatureError, match=ahead_text):
                receiver.decode(frames)
    # without max_age no clock is trusted: a date a year ahead is accepted
    sender = Codec(KEY, clock=Clock(T0 + 365 * 86400.0))
    assert Codec(KEY, clock=clock).decode(sender.encode(sender.message("t"))).msg_type == "t"


def test_max_age_names_a_date_that_is_not_one() -> None:
    codec = Codec(max_age=5.0, clock=Clock())
    message = codec.message("t")
    bad = Message({**message.header, "date": "yesterday"})
    with pytest.raises(EnvelopeError, match=r"header\.date 'yesterday'"):
        codec.decode(codec.encode(bad))


# -- malformed input ----------------------------------------------------------------------


def valid_parts(serializer: Serializer = Serializer.MSGPACK) -> list[bytes]:
    codec = Codec(serializer=serializer, clock=Clock())
    return codec.encode(codec.message("t", {"a": 1}))


def header_frame(serializer: Serializer = Serializer.MSGPACK, **changes: Any) -> bytes:
    header = Codec(clock=Clock()).header("t")
    header.update(changes)
    return pack({k: v for k, v in header.items() if v is not None}, serializer)


def with_frame(
    index: int, frame: bytes, serializer: Serializer = Serializer.MSGPACK
) -> list[bytes]:
    frames = valid_parts(serializer)
    frames[index] = frame
    return frames


MALFORMED: list[tuple[str, list[bytes], str]] = [
    ("no delimiter", [b"topic", b"", b"\x80"], "no <IDS|MSG> delimiter among 3 frames"),
    ("empty list", [], "no <IDS|MSG> delimiter among 0 frames"),
    (
        "4 after delimiter",
        valid_parts()[:5],
        r"4 frames after the delimiter, expected at least 5 \(signature, header, parent_header, "
        r"metadata, content\)$",
    ),
    ("delimiter last", [b"topic", DELIMITER], "0 frames after the delimiter"),
    ("empty header", with_frame(2, b""), "header frame is empty"),
    ("header text", with_frame(2, b"hello"), "starts with byte 0x68"),
    ("header list", with_frame(2, msgpack.packb([1, 2])), "starts with byte 0x92"),
    ("content list", with_frame(5, msgpack.packb([1])), "content frame holds list"),
    ("metadata int", with_frame(4, msgpack.packb(7)), "metadata frame holds int"),
    (
        "parent json list",
        with_frame(3, b"[1]", Serializer.JSON),
        "parent_header frame holds list",
    ),
    ("bad msgpack", with_frame(2, b"\x81\xc1"), "header frame is not valid msgpack"),
    ("truncated msgpack", with_frame(5, b"\x81\xa1a"), "content frame is not valid msgpack"),
    ("msgpack trailing", with_frame(5, b"\x80\x80"), "content frame is not valid msgpack"),
    ("msgpack ext", with_frame(5, b"\x81\xa1a\xd4\x05\x00"), "extension type 5"),
    ("bad json", with_frame(5, b'{"a":', Serializer.JSON), "content frame is not valid json"),
    ("json junk", with_frame(5, b'{"a":1} x', Serializer.JSON), "content frame is not valid json"),
    ("json NaN", with_frame(5, b'{"a":NaN}', Serializer.JSON), "NaN is not valid JSON"),
    ("json latin-1", with_frame(5, b'{"a":"\xff"}', Serializer.JSON), "not valid json"),
    ("header missing", with_frame(2, header_frame(msg_type=None)), "header.msg_type is missing"),
    (
        "header mistyped",
        with_frame(2, header_frame(date=12)),
        "header.date is int, expected a string",
    ),
    (
        "json header missing",
        with_frame(2, header_frame(Serializer.JSON, version=None), Serializer.JSON),
        "header.version is missing",
    ),
    (
        "bad $bytes hex",
        with_frame(5, b'{"d":{"$bytes":"zz"}}', Serializer.JSON),
        "content frame is not valid json: non-hexadecimal",
    ),
    (
        "$bytes not text",
        with_frame(5, b'{"d":{"$bytes":5}}', Serializer.JSON),
        "\\$bytes holds int, expected a hex string",
    ),
    (
        "$bytes top level",
        with_frame(5, b'{"$bytes":"00"}', Serializer.JSON),
        "content frame holds bytes, expected a map",
    ),
]


@pytest.mark.parametrize("key", KEYS, ids=["unsigned", "signed-receiver"])
@pytest.mark.parametrize(
    ("frames", "problem"), [(f, p) for _, f, p in MALFORMED], ids=[n for n, _, _ in MALFORMED]
)
def test_malformed_input_names_the_problem(frames: list[bytes], problem: str, key: bytes) -> None:
    if key and len(frames) > 2 and DELIMITER in frames:
        # sign what is there, so the signed receiver gets past the signature to the problem
        index = frames.index(DELIMITER)
        frames = list(frames)
        if len(frames) - index - 1 >= 5:
            frames[index + 1] = Signer(key).sign(frames[index + 2 : index + 6])
    with pytest.raises(EnvelopeError, match=problem):
        Codec(key).decode(frames)


def test_json_accepts_whitespace_and_escaped_keys() -> None:
    """Other JSON writers (jupyter_client's) put spaces in, or escape characters."""
    content = b' {"d" : {"\\u0024bytes": "0102"}, "e": "\\u00e9"} \n'
    frames = with_frame(5, content, Serializer.JSON)
    assert Codec().decode(frames).content == {"d": b"\x01\x02", "e": "é"}
    assert unpack(b'{"a": [1, {"b": null}]}', Serializer.JSON, "content") == {"a": [1, {"b": None}]}


def test_split_envelope() -> None:
    identities, rest = split_envelope([b"a", b"b", DELIMITER, b"sig", b"h"])
    assert identities == (b"a", b"b")
    assert list(rest) == [b"sig", b"h"]
    with pytest.raises(EnvelopeError, match="no <IDS\\|MSG> delimiter"):
        split_envelope([b"a"])


def test_decode_accepts_bytes_like_frames() -> None:
    sender, receiver = pair()
    frames = sender.encode(sender.message("t", {"a": b"\x01"}, buffers=[b"buf"], identities=[b"t"]))
    got = receiver.decode([memoryview(f) if i % 2 else bytearray(f) for i, f in enumerate(frames)])
    assert got.content == {"a": b"\x01"}
    assert type(got.identities[0]) is bytes
    assert type(got.buffers[0]) is bytes


@pytest.mark.parametrize(
    "odd", range(5), ids=["signature", "header", "parent", "metadata", "content"]
)
@pytest.mark.parametrize("kind", ["one bytes-like among bytes", "one bytes among bytes-like"])
def test_decode_takes_a_mix_of_bytes_and_bytes_like_frames(odd: int, kind: str) -> None:
    """As a socket read with ``copy=False`` gives them: zmq.Frame objects, which cannot be
    sliced and are hashed by identity (a replay guard would not know one again)."""
    sender, receiver = pair()
    content = {"a": b"\x01"}
    frames = sender.encode(sender.message("t", content, metadata={"m": 1}, identities=[b"t"]))
    start = frames.index(DELIMITER) + 1
    like = kind == "one bytes-like among bytes"
    mixed: list[Any] = [
        zmq.Frame(f) if (i == start + odd) == like and i >= start else f
        for i, f in enumerate(frames)
    ]
    guard = ReplayGuard(16)
    got = receiver.decode(mixed, guard)
    assert (got.msg_type, got.content, got.metadata) == ("t", content, {"m": 1})
    with pytest.raises(SignatureError, match="replayed"):
        receiver.decode(frames, guard)


# -- property tests -----------------------------------------------------------------------

TEXT = st.text(max_size=12)
KEY_TEXT = TEXT.filter(lambda k: k != "$bytes")
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT
    | st.binary(max_size=16)
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(KEY_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)
DICTS = st.dictionaries(KEY_TEXT, VALUES, max_size=5)
HEADERS = st.fixed_dictionaries(
    {name: TEXT for name in ("msg_id", "session", "username", "date", "msg_type", "version")},
    optional={"subshell_id": TEXT},
)
MESSAGES = st.builds(
    Message,
    header=HEADERS,
    parent_header=st.one_of(st.just({}), HEADERS),
    metadata=DICTS,
    content=DICTS,
    buffers=st.lists(st.binary(max_size=8), max_size=2).map(tuple),
    identities=st.lists(st.binary(max_size=8).filter(lambda b: b != DELIMITER), max_size=2).map(
        tuple
    ),
    serializer=st.sampled_from(SERIALIZERS),
)


@given(message=MESSAGES, key=st.sampled_from(KEYS))
def test_valid_messages_round_trip_exactly(message: Message, key: bytes) -> None:
    sender, receiver = Codec(key), Codec(key)
    frames = sender.encode(message)
    got = receiver.decode(frames)
    assert got == message
    assert got.serializer is message.serializer
    assert Codec(key).encode(got) == frames


def mutate(frames: list[bytes], data: st.DataObject) -> list[bytes]:
    frames = list(frames)
    for _ in range(data.draw(st.integers(1, 3), label="mutations")):
        if not frames:
            break
        i = data.draw(st.integers(0, len(frames) - 1), label="frame")
        frame = frames[i]
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "drop", "duplicate"]))
        if kind == "drop":
            del frames[i]
        elif kind == "duplicate":
            frames.insert(i, frame)
        elif kind == "insert":
            at = data.draw(st.integers(0, len(frame)), label="at")
            frames[i] = frame[:at] + data.draw(st.binary(min_size=1, max_size=3)) + frame[at:]
        elif frame:
            at = data.draw(st.integers(0, len(frame) - 1), label="at")
            if kind == "flip":
                bit = 1 << data.draw(st.integers(0, 7), label="bit")
                frames[i] = frame[:at] + bytes([frame[at] ^ bit]) + frame[at + 1 :]
            else:
                frames[i] = frame[:at] + frame[at + 1 :]
    return frames


def decodes_or_wire_error(codec: Codec, frames: list[bytes]) -> None:
    try:
        message = codec.decode(frames)
    except WireError:
        return
    assert isinstance(message, Message)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(message=MESSAGES, key=st.sampled_from(KEYS), data=st.data())
def test_mutated_messages_decode_or_raise_wire_errors(
    message: Message, key: bytes, data: st.DataObject
) -> None:
    frames = mutate(Codec(key).encode(message), data)
    decodes_or_wire_error(Codec(key), frames)
    decodes_or_wire_error(Codec(max_age=10.0, clock=Clock()), frames)


@settings(max_examples=300)
@given(
    frames=st.lists(
        st.one_of(
            st.binary(max_size=24),
            st.just(DELIMITER),
            st.just(b""),
            st.just(b"\x80"),
            st.just(b"{}"),
            st.sampled_from([b"\x86", b"\xde\x00\x06", b'{"', b"\xdf\x00\x00\x00\x01"]).flatmap(
                lambda start: st.binary(max_size=24).map(lambda tail: start + tail)
            ),
        ),
        max_size=10,
    ),
    key=st.sampled_from(KEYS),
)
def test_random_frames_decode_or_raise_wire_errors(frames: list[bytes], key: bytes) -> None:
    decodes_or_wire_error(Codec(key), frames)
    decodes_or_wire_error(Codec(max_age=10.0, clock=Clock()), frames)


def test_a_lone_surrogate_in_json_is_refused_so_what_decodes_can_be_sent_on() -> None:
    """Found by tools/fuzz_envelope.py: JSON's decoder accepts "\\ud800", UTF-8 cannot hold it."""
    codec = Codec()
    frames = codec.encode(codec.message("x", {"a": 1}, serializer=Serializer.JSON))
    frames[-1] = b'{"s":"\\ud800"}'
    with pytest.raises(EnvelopeError, match="content frame holds a lone surrogate"):
        codec.decode(frames)
    frames[-1] = b'{"s":"\\u00e9 \\ud83d\\ude00"}'  # escapes of real characters are fine
    message = codec.decode(frames)
    assert message.content == {"s": "é 😀"}
    assert codec.decode(codec.encode(message)).content == message.content


# -- start keys ---------------------------------------------------------------------------


def test_hkdf_is_rfc_5869() -> None:
    """Test Case 1 of RFC 5869 (SHA-256): the first 32 bytes of its OKM."""
    okm = hkdf(bytes(range(13)), b"\x0b" * 22, bytes(range(0xF0, 0xFA)), "sha256")
    assert okm.hex() == "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf"


def test_a_start_key_is_text_and_depends_on_every_input() -> None:
    key = derive_key(KEY, "propulsion", "s1")
    assert key == derive_key(KEY, "propulsion", "s1")
    assert len(key) == 64
    assert key.decode("ascii") == key.decode("ascii").lower()
    assert len(derive_key(KEY, "propulsion", "s1", "hmac-sha512")) == 128
    others = {
        derive_key(KEY, "navigation", "s1"),
        derive_key(KEY, "propulsion", "s2"),
        derive_key(b"another key", "propulsion", "s1"),
        derive_key(KEY, "propulsion", "s1", "hmac-sha512")[:64],
        derive_key(KEY, "propulsio", "ns1"),  # the name's length is part of the input
    }
    assert key not in others
    assert len(others) == 5
    with pytest.raises(ValueError, match=r"^a start key is derived from a key; this one is empty$"):
        derive_key(b"", "propulsion", "s1")
    with pytest.raises(ValueError, match="hmac-sha256"):
        derive_key(KEY, "propulsion", "s1", "sha256")


def test_a_start_key_s_name_is_at_most_what_its_two_length_bytes_hold() -> None:
    assert len(derive_key(KEY, "n" * 0xFFFF, "s1")) == 64
    with pytest.raises(ValueError, match=r"^name of 65536 bytes: a start key's name has at most"):
        derive_key(KEY, "n" * 0x10000, "s1")


def test_for_start_is_the_same_sender_with_the_start_key() -> None:
    operator = Codec(KEY, username="op", max_age=5.0, clock=Clock())
    alpha = operator.for_start("alpha", "s1")
    assert alpha.key == derive_key(KEY, "alpha", "s1")
    assert (alpha.session, alpha.username, alpha.max_age) == (operator.session, "op", 5.0)
    assert alpha.replay_window == operator.replay_window  # what it receives is the channel's
    ids = [operator.message("t").msg_id, alpha.message("t").msg_id, operator.message("t").msg_id]
    assert len(set(ids)) == 3  # one msg_id counter
    assert alpha.for_start("beta", "s1").key == operator.for_start("beta", "s1").key
    node = Codec(derive_key(KEY, "alpha", "s1"), username="alpha", clock=Clock())
    frames = alpha.encode(alpha.message("t_request"))
    assert node.decode(frames).msg_type == "t_request"
    for wrong in (operator, operator.for_start("beta", "s1"), operator.for_start("alpha", "s0")):
        with pytest.raises(SignatureError, match="invalid signature"):
            Codec(wrong.key).decode(frames)
    unsigned = Codec()
    assert unsigned.for_start("alpha", "s1") is unsigned
