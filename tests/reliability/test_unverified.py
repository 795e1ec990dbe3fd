"""A node with a key never answers what it cannot verify (a signed answer to a forged
request would help the forger), on shell and on control; it counts each one.

A real node process; a raw DEALER per channel sends forged, unsigned and tampered
requests, then one valid request. A channel answers in the order it reads, so the first
thing to come back must be the reply to the valid one: no waiting for a silence.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import zmq

from rovbus.config import load_system
from rovbus.wire.codec import Codec
from tests.helpers.daemons import node_process
from tests.helpers.systemfile import node_toml
from tests.reliability.threads import signed_extra, start_codec


def unverifiable(codec: Codec) -> dict[str, list[bytes]]:
    """Requests as a DEALER sends them ([DELIM, signature, header, parent, metadata,
    content]) that a node verifying with ``codec``'s key cannot verify."""
    frames = codec.encode(codec.message("kernel_info_request", {}))
    other = codec.encode(codec.message("shutdown_request", {"restart": False}))
    forger = Codec(b"not the key", username="op")
    unsigned = Codec(username="op")

    def flipped(frame: bytes) -> bytes:
        return frame[:-1] + bytes([frame[-1] ^ 1])

    return {
        "forged (another key)": forger.encode(forger.message("kernel_info_request", {})),
        "unsigned": unsigned.encode(unsigned.message("kernel_info_request", {})),
        "content tampered": [*frames[:5], flipped(frames[5])],
        "header tampered": [*frames[:2], flipped(frames[2]), *frames[3:]],
        "another request's header": [*frames[:2], other[2], *frames[3:]],
        "another request's signature": [frames[0], other[1], *frames[2:]],
        "signature cut short": [frames[0], frames[1][:32], *frames[2:]],
        "too few frames to verify": frames[:3],
    }


@pytest.mark.parametrize("channel", ["shell", "control"])
def test_a_node_never_answers_what_it_cannot_verify(
    channel: str,
    write_system,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    config = write_system(node_toml("alpha"), extra=signed_extra(tmp_path))
    system = load_system(config)
    operator = Codec(system.hmac_key(), username="op")
    endpoints = system.node("alpha").endpoints
    ctx: zmq.Context[Any] = zmq.Context()

    def dealer(endpoint: object) -> zmq.Socket[bytes]:
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(str(endpoint))
        return sock

    def first_reply(sock: zmq.Socket[bytes], msg_type: str) -> dict[str, Any]:
        """Send a valid request; the first thing back must be its reply."""
        request = codec.message(msg_type, {})
        sock.send_multipart(codec.encode(request))
        assert sock.poll(10_000), f"no reply to {msg_type}"
        reply = codec.decode(sock.recv_multipart())
        assert reply.parent_header["msg_id"] == request.msg_id, (
            f"answered something before the valid {msg_type}: {reply.content}"
        )
        return reply.content

    shell, attacker = dealer(endpoints.shell), dealer(getattr(endpoints, channel))
    try:
        with node_process(config, "alpha", tmp_path) as (_, systemd):
            systemd.wait_for("READY=1")
            codec = start_codec(ctx, str(endpoints.pub), operator, "alpha")
            before = first_reply(shell, "stats_request")["sockets"][channel]
            bad = unverifiable(codec)
            for frames in bad.values():
                attacker.send_multipart(frames)
            assert first_reply(attacker, "kernel_info_request")["status"] == "ok"
            after = first_reply(shell, "stats_request")["sockets"][channel]
            stats = 1 if channel == "shell" else 0  # the second stats request and a reply
            assert after["rejected"] - before["rejected"] == len(bad)
            assert after["messages_in"] - before["messages_in"] == len(bad) + 1 + stats
            assert after["messages_out"] - before["messages_out"] == 1 + stats
    finally:
        ctx.destroy(linger=0)
