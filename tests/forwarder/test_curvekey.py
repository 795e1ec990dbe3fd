"""The CURVE key name a forwarder writes into a request, and signs again for the node."""

from __future__ import annotations

import pytest

from rovbus.errors import SignatureError
from rovbus.forwarder.curvekey import stamped
from rovbus.transport.curve import FORWARDER_USER_ID
from rovbus.wire.codec import DELIMITER, Codec
from rovbus.wire.serializers import Serializer

KEY = b"system-key-of-the-test-0123456789"


def through(user_id: str, metadata: dict[str, str], serializer: Serializer) -> dict[str, object]:
    """A request with ``metadata`` from a client, stamped as the forwarder does for a
    connection with ``user_id``, then read by the node (a codec of the same start key)."""
    client = Codec(KEY, username="alice").for_start("alpha", "s1")
    forwarder = Codec(KEY).for_start("alpha", "s1")
    node = Codec(KEY).for_start("alpha", "s1")
    frames = client.encode(
        client.message(
            "can_send_request", {"bus": "can0"}, metadata=metadata, serializer=serializer
        )
    )
    request = forwarder.decode(frames)
    body = stamped(forwarder, request, frames[1:], user_id)
    arrived = node.decode([DELIMITER, *body])
    assert arrived.header == request.header
    assert arrived.content == request.content
    return arrived.metadata


@pytest.mark.parametrize("serializer", [Serializer.MSGPACK, Serializer.JSON])
def test_a_client_key_is_named_whatever_the_client_claimed(serializer: Serializer) -> None:
    assert through("client:alice", {}, serializer) == {"curve_key": "alice"}
    assert through("client:alice", {"curve_key": "admiral", "x": "1"}, serializer) == {
        "curve_key": "alice",
        "x": "1",
    }


def test_a_request_not_over_curve_loses_a_claimed_key() -> None:
    assert through("", {"curve_key": "admiral"}, Serializer.MSGPACK) == {}
    assert through("", {"x": "1"}, Serializer.MSGPACK) == {"x": "1"}


def test_a_forwarder_further_out_keeps_the_key_it_named() -> None:
    assert through(FORWARDER_USER_ID, {"curve_key": "alice"}, Serializer.MSGPACK) == {
        "curve_key": "alice"
    }


def test_the_stamp_is_signed_with_the_start_key_only() -> None:
    """What the forwarder signs again verifies at the node of that start only."""
    client = Codec(KEY).for_start("alpha", "s1")
    frames = client.encode(client.message("can_send_request", {}))
    body = stamped(client, client.decode(frames), frames[1:], "client:alice")
    with pytest.raises(SignatureError):
        Codec(KEY).for_start("alpha", "s2").decode([DELIMITER, *body])
