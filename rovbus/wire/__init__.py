"""The wire layer: everything about a message's bytes, and nothing about sockets.

Promises: ``Codec.decode`` raises only ``EnvelopeError`` or ``SignatureError`` for any input;
``decode(encode(m)) == m`` for every message of dicts, lists, strings, numbers, booleans,
``None`` and bytes; frames are signed exactly as jupyter_client signs them; CAN frames
convert to and from content, batches, python-can messages and can-utils text without loss.
"""

from rovbus.wire.canframe import CanFrame, Direction, batch_content, frames_from_batch
from rovbus.wire.cantext import format_candump, format_cansend, parse_candump, parse_cansend
from rovbus.wire.codec import DELIMITER, Codec, new_session_id, split_envelope
from rovbus.wire.message import PROTOCOL_VERSION, Message, format_date, parse_date
from rovbus.wire.serializers import Serializer
from rovbus.wire.signing import ReplayGuard, Signer
from rovbus.wire.topics import (
    Topic,
    batch_topic,
    can_topic,
    check_name,
    heartbeat_topic,
    log_topic,
    parse_topic,
    signal_topic,
    status_topic,
)

__all__ = [
    "DELIMITER",
    "PROTOCOL_VERSION",
    "CanFrame",
    "Codec",
    "Direction",
    "Message",
    "ReplayGuard",
    "Serializer",
    "Signer",
    "Topic",
    "batch_content",
    "batch_topic",
    "can_topic",
    "check_name",
    "format_candump",
    "format_cansend",
    "format_date",
    "frames_from_batch",
    "heartbeat_topic",
    "log_topic",
    "new_session_id",
    "parse_candump",
    "parse_cansend",
    "parse_date",
    "parse_topic",
    "signal_topic",
    "split_envelope",
    "status_topic",
]
