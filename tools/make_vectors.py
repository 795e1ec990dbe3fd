"""Write tests/vectors/envelope.json: envelopes as hex frames, for implementations to check.

Deterministic: a fixed key, session, username, msg_id and date, so the file only changes
when the wire format does. Each vector is::

    {"name", "key", "signature_scheme", "serializer", "frames": [hex, ...],
     "message": {"header", "parent_header", "metadata", "content"},
     "identities": [hex, ...], "buffers": [hex, ...]}     # the last two where present

``key`` is the HMAC key as text ("" = unsigned); bytes inside ``message`` are written as
``{"$bytes": "<hex>"}``. docs/protocol.md walks through ``can_frame_11bit_sha256_msgpack``;
the ``*_seq*`` vectors carry the header's per-topic ``seq`` that a node's pub messages have.
The ``*_start_key_*`` vectors are a conversation with a node, signed with its start key:
their ``start_key_of`` holds the system key, the node's name and session it derives from
(``rovbus.wire.signing.derive_key``), and ``key`` the result.

    .venv/bin/python tools/make_vectors.py            # writes tests/vectors/envelope.json
    .venv/bin/python tools/make_vectors.py --check    # exit 1 if the file is out of date
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rovbus.wire.canframe import CanFrame, batch_content
from rovbus.wire.codec import Codec
from rovbus.wire.message import PROTOCOL_VERSION, Message, format_date
from rovbus.wire.serializers import Serializer
from rovbus.wire.signing import derive_key
from rovbus.wire.topics import batch_topic, can_topic, heartbeat_topic, status_topic

OUT = Path(__file__).resolve().parent.parent / "tests" / "vectors" / "envelope.json"

KEY = "rovbus-test-vector-key"
SESSION = "4f1c2a7e-9b3d4c5e6f708192a3b4c5d6"
NODE = "propulsion"
OPERATOR = "operator"
EPOCH = 1_700_000_000.123456  # 2023-11-14T22:13:20.123456Z


def header(n: int, msg_type: str, username: str = NODE, session: str = SESSION) -> dict[str, Any]:
    """The n-th header of the fixed session: msg_id as jupyter_client shapes it (pid 1000)."""
    return {
        "msg_id": f"{session}_1000_{n}",
        "session": session,
        "username": username,
        "date": format_date(EPOCH + n / 1000),
        "msg_type": msg_type,
        "version": PROTOCOL_VERSION,
    }


def _hex(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"$bytes": value.hex()}
    if isinstance(value, dict):
        return {k: _hex(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_hex(v) for v in value]
    return value


def vector(
    name: str,
    message: Message,
    key: str = "",
    scheme: str = "hmac-sha256",
    *,
    start_of: str | None = None,
) -> dict[str, Any]:
    """``start_of``: sign with the start key of that node in ``SESSION``, derived from ``key``."""
    derived_from = key
    if start_of is not None:
        key = derive_key(key.encode(), start_of, SESSION, scheme).decode()
    frames = Codec(key.encode(), scheme).encode(message)
    out: dict[str, Any] = {
        "name": name,
        "key": key,
        "signature_scheme": scheme,
        "serializer": str(message.serializer),
        "frames": [f.hex() for f in frames],
        "message": {
            "header": _hex(message.header),
            "parent_header": _hex(message.parent_header),
            "metadata": _hex(message.metadata),
            "content": _hex(message.content),
        },
    }
    if message.identities:
        out["identities"] = [i.hex() for i in message.identities]
    if message.buffers:
        out["buffers"] = [b.hex() for b in message.buffers]
    if start_of is not None:
        out["start_key_of"] = {"system_key": derived_from, "name": start_of, "session": SESSION}
    return out


def can_message(n: int, frame: CanFrame, serializer: Serializer, seq: int | None = None) -> Message:
    """A node's ``can_frame``; with ``seq``, numbered on its topic as a node's pub does."""
    topic = can_topic(NODE, frame.bus, frame.arbitration_id, frame.is_extended_id)
    head = header(n, "can_frame")
    if seq is not None:
        head["seq"] = seq  # the seventh header field, last
    return Message(
        head,
        content=frame.to_content(),
        identities=(topic.encode(),),
        serializer=serializer,
    )


def build() -> list[dict[str, Any]]:
    """Every vector, in a fixed order."""
    ts = EPOCH - 0.000250  # when the node read the frame, just before it sent the message
    classic = CanFrame("can0", 0x0F3, bytes.fromhex("0102030405060708"), timestamp=ts)
    ext = CanFrame("can1", 0x18FEF100, bytes.fromhex("ff00ff00"), is_extended_id=True, timestamp=ts)
    fd = CanFrame(
        "can2",
        0x123,
        bytes(range(12)),
        is_fd=True,
        bitrate_switch=True,
        timestamp=ts,
    )
    remote = CanFrame("can0", 0x7FF, is_remote_frame=True, dlc=8, timestamp=ts)
    error = CanFrame("can0", 0x004, bytes(8), is_error_frame=True, timestamp=ts)
    tx = CanFrame("can0", 0x100, b"\x2a", timestamp=ts + 0.0001, direction="tx")
    msgpack, json_ = Serializer.MSGPACK, Serializer.JSON

    request = Message(
        header(1, "node_info_request", OPERATOR, "a0b1c2d3-e4f5061728394a5b6c7d8e9f"),
        identities=(b"\x00\x80\x00\x00\x29", b"topside-fwd"),
        serializer=json_,
    )
    reply = Message(
        header(8, "node_info_reply"),
        parent_header=request.header,
        content={"status": "ok", "node": NODE, "buses": ["can0", "can1"]},
        identities=request.identities,
        serializer=json_,
    )
    heartbeat = Message(
        header(9, "heartbeat"),
        content={
            "seq": 42,
            "node": NODE,
            "group": "vehicle",
            "session": SESSION,
            "uptime": 123.456,
            "interval": 1.0,
            "state": "ok",
            "buses": {
                "can0": {"state": "ok", "rx": 1000, "tx": 3, "errors": 0, "tx_enabled": True}
            },
            "rejected": 0,
        },
        identities=(heartbeat_topic(NODE).encode(),),
    )
    batch = Message(
        header(10, "can_batch"),
        content=batch_content("can0", [classic, remote, error, tx]),
        identities=(batch_topic(NODE, "can0").encode(),),
    )
    with_buffers = Message(
        header(11, "can_frame"),
        metadata={"note": "buffers are not signed: the frame's bytes are in content"},
        content=classic.to_content(),
        buffers=(b"\xde\xad\xbe\xef", b""),
        identities=(can_topic(NODE, "can0", 0x0F3, False).encode(),),
    )
    thruster = Message(  # to propulsion's shell: thruster 1 to 1000 rpm
        header(16, "can_send_request", OPERATOR, "a0b1c2d3-e4f5061728394a5b6c7d8e9f"),
        content={"bus": "can0", "frames": ["201#E803"]},
    )
    thruster_reply = Message(
        header(17, "can_send_reply"),
        parent_header=thruster.header,
        content={"status": "ok", "bus": "can0", "sent": 1},
        serializer=json_,
    )
    status = Message(
        header(12, "status"),
        parent_header=request.header,
        content={"execution_state": "idle"},
        identities=(status_topic(NODE).encode(),),
        serializer=json_,
    )
    return [
        vector("can_frame_11bit_sha256_msgpack", can_message(2, classic, msgpack), KEY),
        vector("can_frame_11bit_unsigned_msgpack", can_message(2, classic, msgpack)),
        vector("can_frame_11bit_sha256_json", can_message(2, classic, json_), KEY),
        vector("can_frame_29bit_sha512_msgpack", can_message(3, ext, msgpack), KEY, "hmac-sha512"),
        vector("can_frame_fd_brs_sha256_msgpack", can_message(4, fd, msgpack), KEY),
        vector("can_frame_fd_brs_sha512_json", can_message(4, fd, json_), KEY, "hmac-sha512"),
        vector("can_frame_remote_unsigned_msgpack", can_message(5, remote, msgpack)),
        vector("can_frame_error_sha256_msgpack", can_message(6, error, msgpack), KEY),
        vector("can_frame_tx_unsigned_json", can_message(7, tx, json_)),
        vector("can_batch_sha256_msgpack", batch, KEY),
        vector("request_with_identities_sha256_json", request, KEY),
        vector("reply_with_identities_sha256_json", reply, KEY),
        vector("heartbeat_unsigned_msgpack", heartbeat),
        vector("heartbeat_sha256_msgpack", heartbeat, KEY),
        vector("buffers_sha256_msgpack", with_buffers, KEY),
        vector("status_unsigned_json", status),
        # as a node publishes today: the header's per-topic seq (1 = the topic's first)
        vector("can_frame_11bit_seq_sha256_msgpack", can_message(13, classic, msgpack, 1), KEY),
        vector("can_frame_11bit_seq1234_unsigned_msgpack", can_message(14, classic, msgpack, 1234)),
        vector("can_frame_11bit_seq_unsigned_json", can_message(15, classic, json_, 7)),
        # a conversation with a node: signed with its start key (docs/protocol.md, Signing)
        vector("request_start_key_sha256_msgpack", thruster, KEY, start_of=NODE),
        vector("reply_start_key_sha512_json", thruster_reply, KEY, "hmac-sha512", start_of=NODE),
    ]


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, do not write")
    parser.add_argument("--out", type=Path, default=OUT, help=f"default {OUT}")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date: run tools/make_vectors.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(build())} vectors to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
