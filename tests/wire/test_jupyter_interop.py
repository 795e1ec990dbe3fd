"""rovbus and jupyter_client's Session read each other's envelopes.

jupyter_client is the reference peer: what rovbus writes, ``Session.deserialize`` accepts
(signature included), and what ``Session.serialize`` writes, ``Codec.decode`` accepts.
One documented difference: in JSON, rovbus writes bytes as ``{"$bytes": "<hex>"}`` while
jupyter_client writes them as base64 strings (see docs/protocol.md).
"""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import Any

import pytest
from jupyter_client.session import Session

from rovbus.errors import SignatureError
from rovbus.wire.codec import DELIMITER, Codec
from rovbus.wire.message import parse_date
from rovbus.wire.serializers import Serializer

KEY = b"interop-key-5f2e"
T0 = 1_700_000_000.123456
TOPIC = b"propulsion/can/can0/0F3"

CASES = [
    pytest.param(
        serializer, key, scheme, id=f"{serializer}-{'signed' if key else 'unsigned'}-{scheme}"
    )
    for serializer in (Serializer.MSGPACK, Serializer.JSON)
    for key in (b"", KEY)
    for scheme in ("hmac-sha256", "hmac-sha512")
    if key or scheme == "hmac-sha256"
]

TEXT_CONTENT: dict[str, Any] = {
    "bus": "can0",
    "id": 0x18FEF100,
    "ext": True,
    "nested": {"list": [1, 2.5, None, True, "ø ⚓"], "empty": {}},
}


def session(serializer: Serializer, key: bytes, scheme: str, username: str) -> Session:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Session(
            key=key,
            signature_scheme=scheme,
            packer=str(serializer),
            unpacker=str(serializer),
            username=username,
        )


def fixed_clock() -> float:
    return T0


@pytest.mark.parametrize(("serializer", "key", "scheme"), CASES)
def test_session_reads_what_rovbus_writes(serializer: Serializer, key: bytes, scheme: str) -> None:
    codec = Codec(key, scheme, username="propulsion", serializer=serializer, clock=fixed_clock)
    request = codec.message("stats_request")
    content = {**TEXT_CONTENT, "data": b"\x01\x02\xff"}
    sent = codec.message(
        "can_frame",
        content,
        parent=request,
        metadata={"origin": "can0"},
        identities=[TOPIC],
        buffers=[b"raw"],
    )
    receiver = session(serializer, key, scheme, "operator")

    idents, rest = receiver.feed_identities(codec.encode(sent))
    got = receiver.deserialize(rest)

    assert idents == [TOPIC]
    header = got["header"]
    assert {k: header[k] for k in ("msg_id", "session", "username", "msg_type", "version")} == {
        k: sent.header[k] for k in ("msg_id", "session", "username", "msg_type", "version")
    }
    assert isinstance(header["date"], datetime)
    assert header["date"].timestamp() == pytest.approx(T0, abs=1e-6)
    assert got["parent_header"]["msg_id"] == request.header["msg_id"]
    assert got["metadata"] == {"origin": "can0"}
    assert [bytes(b) for b in got["buffers"]] == [b"raw"]
    if serializer is Serializer.MSGPACK:
        assert got["content"] == content
    else:  # JSON has no bytes; rovbus's form reaches Session as a plain object
        assert got["content"] == {**TEXT_CONTENT, "data": {"$bytes": "0102ff"}}


@pytest.mark.parametrize(("serializer", "key", "scheme"), CASES)
def test_rovbus_reads_what_session_writes(serializer: Serializer, key: bytes, scheme: str) -> None:
    sender = session(serializer, key, scheme, "jupyter")
    request = sender.msg("kernel_info_request")
    content = dict(TEXT_CONTENT)
    if serializer is Serializer.MSGPACK:
        content["data"] = b"\x01\x02\xff"  # Session's msgpack keeps bytes as bytes
    msg = sender.msg("execute_request", content, parent=request, metadata={"m": [1]})
    frames = sender.serialize(msg, ident=[b"hop2", b"hop1"])

    got = Codec(key, scheme).decode([*frames, b"buffer"])

    assert got.identities == (b"hop2", b"hop1")
    assert got.serializer is serializer
    assert got.msg_type == "execute_request"
    assert got.msg_id == msg["header"]["msg_id"]
    assert got.header["username"] == "jupyter"
    assert got.header["session"] == sender.session
    assert parse_date(got.header["date"]) == pytest.approx(msg["header"]["date"].timestamp())
    assert got.parent_header["msg_id"] == request["header"]["msg_id"]
    assert got.metadata == {"m": [1]}
    assert got.content == content
    assert got.buffers == (b"buffer",)


def test_session_json_writes_bytes_as_base64_text() -> None:
    """The documented difference: rovbus reads Session's JSON bytes as a base64 string."""
    sender = session(Serializer.JSON, b"", "hmac-sha256", "jupyter")
    frames = sender.serialize(sender.msg("t", {"data": b"\x01\x02\xff"}))
    assert Codec().decode(frames).content == {"data": "AQL/"}


def test_each_side_refuses_the_others_replay() -> None:
    codec = Codec(KEY)
    frames = codec.encode(codec.message("t", {"a": 1}, identities=[TOPIC]))
    receiver = session(Serializer.MSGPACK, KEY, "hmac-sha256", "operator")
    _, rest = receiver.feed_identities(frames)
    receiver.deserialize(rest)
    with pytest.raises(ValueError, match="Duplicate Signature"):
        receiver.deserialize(rest)

    sender = session(Serializer.JSON, KEY, "hmac-sha256", "jupyter")
    frames = sender.serialize(sender.msg("t", {"a": 1}))
    guard = codec.new_replay_guard()
    codec.decode(frames, guard)
    with pytest.raises(SignatureError, match="replayed"):
        codec.decode(frames, guard)


def test_each_side_refuses_the_other_with_a_different_key() -> None:
    codec = Codec(KEY)
    receiver = session(Serializer.MSGPACK, b"other", "hmac-sha256", "operator")
    _, rest = receiver.feed_identities(codec.encode(codec.message("t")))
    with pytest.raises(ValueError, match="Invalid Signature"):
        receiver.deserialize(rest)

    sender = session(Serializer.JSON, b"other", "hmac-sha256", "jupyter")
    with pytest.raises(SignatureError, match="invalid signature"):
        codec.decode(sender.serialize(sender.msg("t")))


def test_session_signature_equals_rovbus_signature_for_the_same_frames() -> None:
    codec = Codec(KEY, "hmac-sha512")
    frames = codec.encode(codec.message("t", {"a": b"\x00"}))
    index = frames.index(DELIMITER)
    reference = session(Serializer.MSGPACK, KEY, "hmac-sha512", "x")
    assert reference.sign(frames[index + 2 : index + 6]) == frames[index + 1]
