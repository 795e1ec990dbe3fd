"""``Codec.encode_new``, the node's per-frame fast path, writes exactly what the general
path writes: a receiver cannot tell them apart."""

from __future__ import annotations

import pytest

from rovbus.wire.codec import Codec
from rovbus.wire.serializers import Serializer

CONTENT = {"bus": "can0", "id": 0x123, "ext": False, "data": b"\x01\x02\xff", "ts": 1.5}


def twin_codecs(key: bytes) -> tuple[Codec, Codec]:
    def make() -> Codec:
        return Codec(key, username="propulsion", session="s-1", clock=lambda: 1_700_000_000.25)

    return make(), make()


@pytest.mark.parametrize("key", [b"", b"secret"])
@pytest.mark.parametrize("serializer", list(Serializer))
@pytest.mark.parametrize("content", [CONTENT, {}])
def test_encode_new_matches_the_general_path(
    key: bytes, serializer: Serializer, content: dict[str, object]
) -> None:
    fast, general = twin_codecs(key)
    identities = (b"propulsion/can/can0/123",)
    for msg_type in ("can_frame", "heartbeat", "can_frame"):  # cached header tails reused
        got = fast.encode_new(msg_type, content, identities, serializer)
        want = general.encode(
            general.message(msg_type, content, identities=identities, serializer=serializer)
        )
        assert got == want
        assert Codec(key).decode(got).content == content


def test_encode_new_follows_a_changed_username() -> None:
    fast, general = twin_codecs(b"")
    fast.username = general.username = "renamed"
    got = fast.encode_new("status", {"execution_state": "idle"})
    want = general.encode(general.message("status", {"execution_state": "idle"}))
    assert got == want


@pytest.mark.parametrize("serializer", list(Serializer))
def test_encode_new_with_seq_matches_the_general_path(serializer: Serializer) -> None:
    """A publisher's ``seq`` is the header's seventh field, last, in msgpack's shortest
    integer form: fixint up to 127, then uint8, uint16, uint32, uint64."""
    fast, general = twin_codecs(b"secret")
    identities = (b"propulsion/can/can0/123",)
    for seq in (1, 127, 128, 255, 256, 65_535, 65_536, 2**32 - 1, 2**32, 2**64 - 1):
        got = fast.encode_new("can_frame", CONTENT, identities, serializer, seq)
        want = general.encode(
            general.message(
                "can_frame", CONTENT, identities=identities, serializer=serializer, seq=seq
            )
        )
        assert got == want
        header = Codec(b"secret").decode(got).header
        assert list(header)[-1] == "seq"
        assert header["seq"] == seq
    # without seq, the header is the six fields, as before
    assert "seq" not in Codec().decode(fast.encode_new("can_frame", CONTENT, identities)).header
