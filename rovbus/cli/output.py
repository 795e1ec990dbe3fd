"""Turning messages into lines: JSON lines, pretty lines, candump lines, CAN frames.

Imported by the commands' ``run`` only (it imports the wire layer).
"""

from __future__ import annotations

import json
import time
from typing import Any

from rovbus.wire.canframe import CanFrame, frames_from_batch
from rovbus.wire.cantext import format_cansend
from rovbus.wire.contents import read_heartbeat
from rovbus.wire.message import Message

__all__ = ["can_frames", "jsonable", "jsonl_line", "pretty_line", "to_json"]


def jsonable(value: Any) -> Any:
    """``value`` with bytes as upper-case hex strings (JSON has no bytes)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex().upper()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def to_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(
        jsonable(value), indent=indent, separators=None if indent else (",", ":"), sort_keys=False
    )


def can_frames(message: Message) -> list[CanFrame]:
    """The CAN frames a ``can_frame`` or ``can_batch`` message carries ([] otherwise or if
    the content is bad)."""
    try:
        if message.msg_type == "can_frame":
            return [CanFrame.from_content(message.content)]
        if message.msg_type == "can_batch":
            return frames_from_batch(message.content)
    except ValueError:
        return []
    return []


def jsonl_line(message: Message, extra: dict[str, Any] | None = None) -> str:
    record: dict[str, Any] = {
        "topic": message.topic,
        "type": message.msg_type,
        "date": message.header.get("date"),
        "from": message.header.get("username"),
        "content": message.content,
    }
    if message.parent_header.get("msg_id"):
        record["parent"] = message.parent_header["msg_id"]
    if extra:
        record.update(extra)
    return to_json(record)


def clock(epoch: float) -> str:
    t = time.localtime(epoch)
    return f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}.{int(epoch % 1 * 1000):03d}"


def pretty_line(message: Message, received: float, width: int = 0) -> str:
    """``12:00:01.234  topic  type  summary`` for people."""
    head = f"{clock(received)}  {message.topic:<28} "
    c = message.content
    kind = message.msg_type
    if kind == "can_frame":
        frames = can_frames(message)
        body = format_cansend(frames[0]) + f"  {frames[0].direction}" if frames else to_json(c)
    elif kind == "can_batch":
        frames = can_frames(message)
        body = f"batch of {len(frames)}: " + " ".join(format_cansend(f) for f in frames[:4])
        if len(frames) > 4:
            body += " ..."
    elif kind == "heartbeat" and (beat := read_heartbeat(c)) is not None:
        summary = ", ".join(
            f"{name} {b['state']} rx {b['rx']} tx {b['tx']}" for name, b in beat["buses"].items()
        )
        body = f"heartbeat #{beat['seq']} {beat['state']} up {beat['uptime']} s; {summary}"
    else:
        body = f"{kind} {to_json(c)}"
    line = head + body
    if width and len(line) > width:
        line = line[: max(width - 1, 10)] + "…"
    return line
