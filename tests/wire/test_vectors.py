"""tests/vectors/envelope.json: rovbus and jupyter_client both read every vector.

The vectors are what another implementation checks itself against (docs/protocol.md), so
they must decode to their message, re-encode to the same frames, and be accepted by the
reference peer.
"""

from __future__ import annotations

import hmac
import importlib.util
import json
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.session import Session

from rovbus.errors import SignatureError
from rovbus.wire.canframe import CanFrame, frames_from_batch
from rovbus.wire.codec import DELIMITER, Codec
from rovbus.wire.message import Message, parse_date
from rovbus.wire.serializers import Serializer
from rovbus.wire.signing import derive_key
from rovbus.wire.topics import can_topic

ROOT = Path(__file__).resolve().parents[2]
VECTORS_FILE = ROOT / "tests" / "vectors" / "envelope.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTORS_FILE.read_text(encoding="utf-8"))
IDS = [v["name"] for v in VECTORS]


def with_bytes(value: Any) -> Any:
    """The vector's JSON form with every ``{"$bytes": hex}`` turned back into bytes."""
    if isinstance(value, dict):
        if set(value) == {"$bytes"}:
            return bytes.fromhex(value["$bytes"])
        return {k: with_bytes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [with_bytes(v) for v in value]
    return value


def frames_of(vector: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(f) for f in vector["frames"]]


def codec_for(vector: dict[str, Any]) -> Codec:
    return Codec(vector["key"].encode(), vector["signature_scheme"])


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_rovbus_decodes_the_vector_and_encodes_it_back(vector: dict[str, Any]) -> None:
    frames = frames_of(vector)
    got = codec_for(vector).decode(frames)
    expected = {k: with_bytes(v) for k, v in vector["message"].items()}
    assert got.header == expected["header"]
    assert got.parent_header == expected["parent_header"]
    assert got.metadata == expected["metadata"]
    assert got.content == expected["content"]
    assert got.identities == tuple(bytes.fromhex(i) for i in vector.get("identities", []))
    assert got.buffers == tuple(bytes.fromhex(b) for b in vector.get("buffers", []))
    assert got.serializer is Serializer(vector["serializer"])
    rebuilt = Message(
        expected["header"],
        expected["parent_header"],
        expected["metadata"],
        expected["content"],
        got.buffers,
        got.identities,
        Serializer(vector["serializer"]),
    )
    assert codec_for(vector).encode(rebuilt) == frames


@pytest.mark.parametrize("vector", VECTORS, ids=IDS)
def test_session_deserializes_the_vector(vector: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        session = Session(
            key=vector["key"].encode(),
            signature_scheme=vector["signature_scheme"],
            packer=vector["serializer"],
            unpacker=vector["serializer"],
        )
    idents, rest = session.feed_identities(frames_of(vector))
    got = session.deserialize(rest)  # checks the signature when there is a key

    assert idents == [bytes.fromhex(i) for i in vector.get("identities", [])]
    header = dict(got["header"])
    date = header.pop("date")
    assert isinstance(date, datetime)
    expected_header = dict(vector["message"]["header"])
    assert date.timestamp() == pytest.approx(parse_date(expected_header.pop("date")), abs=1e-6)
    assert header == expected_header
    # msgpack keeps bytes as bytes; Session's JSON reads rovbus's {"$bytes": hex} objects as
    # plain objects, which is the vector's own JSON form
    content = vector["message"]["content"]
    msgpack = vector["serializer"] == "msgpack"
    assert got["content"] == (with_bytes(content) if msgpack else content)
    assert [bytes(b) for b in got["buffers"]] == [
        bytes.fromhex(b) for b in vector.get("buffers", [])
    ]


def test_vectors_cover_what_the_protocol_promises() -> None:
    kinds = {(v["key"] != "", v["signature_scheme"], v["serializer"]) for v in VECTORS}
    assert (False, "hmac-sha256", "msgpack") in kinds
    assert (True, "hmac-sha256", "msgpack") in kinds
    assert (True, "hmac-sha512", "msgpack") in kinds
    assert any(k[2] == "json" for k in kinds)
    types = {v["message"]["header"]["msg_type"] for v in VECTORS}
    assert {"can_frame", "can_batch", "heartbeat", "status"} <= types
    assert any("identities" in v and len(v["identities"]) > 1 for v in VECTORS)
    assert any("buffers" in v for v in VECTORS)
    # a node's pub header today: the per-topic seq, last, in msgpack and JSON
    numbered = [v for v in VECTORS if "seq" in v["message"]["header"]]
    assert {v["serializer"] for v in numbered} == {"msgpack", "json"}
    assert all(list(v["message"]["header"])[-1] == "seq" for v in numbered)
    assert any(v["message"]["header"]["seq"] > 0xFF for v in numbered)  # not a fixint
    frames = [
        CanFrame.from_content(with_bytes(v["message"]["content"]))
        for v in VECTORS
        if v["message"]["header"]["msg_type"] == "can_frame"
    ]
    assert any(f.is_extended_id for f in frames)
    assert any(not f.is_extended_id for f in frames)
    assert any(f.is_fd and f.bitrate_switch for f in frames)
    assert any(f.is_remote_frame for f in frames)
    assert any(f.is_error_frame for f in frames)


@pytest.mark.parametrize(
    "vector",
    [v for v in VECTORS if v["message"]["header"]["msg_type"] == "can_frame"],
    ids=lambda v: v["name"],
)
def test_can_frame_vectors_are_published_under_their_id(vector: dict[str, Any]) -> None:
    frame = CanFrame.from_content(with_bytes(vector["message"]["content"]))
    topic = can_topic("propulsion", frame.bus, frame.arbitration_id, frame.is_extended_id)
    assert bytes.fromhex(vector["identities"][0]) == topic.encode()
    assert frame.to_content() == with_bytes(vector["message"]["content"])


def test_batch_vector_holds_its_frames() -> None:
    (vector,) = [v for v in VECTORS if v["message"]["header"]["msg_type"] == "can_batch"]
    frames = frames_from_batch(codec_for(vector).decode(frames_of(vector)).content)
    assert [f.arbitration_id for f in frames] == [0x0F3, 0x7FF, 0x004, 0x100]
    assert [f.is_remote_frame for f in frames] == [False, True, False, False]
    assert frames[1].dlc == 8
    assert frames[3].direction == "tx"


def test_signed_vector_frames_are_hmac_of_the_dict_frames() -> None:
    """The signature frame is the hex HMAC of the four dict frames, computed here with the
    standard library (as jupyter_client does), not with rovbus's signer."""
    for vector in VECTORS:
        frames = frames_of(vector)
        index = frames.index(DELIMITER)
        signature, dicts = frames[index + 1], frames[index + 2 : index + 6]
        if vector["key"]:
            digest = vector["signature_scheme"].removeprefix("hmac-")
            mac = hmac.new(vector["key"].encode(), digestmod=digest)
            for frame in dicts:
                mac.update(frame)
            assert signature == mac.hexdigest().encode(), vector["name"]
        else:
            assert signature == b""


def test_start_key_vectors_hold_the_key_their_node_derives() -> None:
    started = [v for v in VECTORS if "start_key_of" in v]
    assert {v["signature_scheme"] for v in started} == {"hmac-sha256", "hmac-sha512"}
    for vector in started:
        of = vector["start_key_of"]
        key = derive_key(
            of["system_key"].encode(), of["name"], of["session"], vector["signature_scheme"]
        )
        assert vector["key"] == key.decode()
        system = Codec(of["system_key"].encode(), vector["signature_scheme"])
        start = system.for_start(of["name"], of["session"])
        assert start.decode(frames_of(vector)).msg_type == vector["message"]["header"]["msg_type"]
        with pytest.raises(SignatureError):
            system.decode(frames_of(vector))


def test_vector_file_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_vectors", ROOT / "tools" / "make_vectors.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render() == VECTORS_FILE.read_text(encoding="utf-8")
