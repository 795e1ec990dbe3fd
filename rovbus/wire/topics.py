"""Topic strings of the pub channel: building and parsing.

Topics are ``/``-separated and matched by byte prefix (ZeroMQ's rule)::

    <node>/can/<bus>/<ID>         one CAN frame; ID upper-case hex, 3 digits (11-bit) or 8 (29-bit)
    <node>/can/<bus>              a batch of frames of one bus
    <node>/hb                     heartbeat
    <node>/status                 node status
    <node>/helm                   the helm of the node's buses (helm_status)
    <node>/log                    log lines
    <node>/sig/<bus>/<message>    decoded signals of one DBC message

A prefix meant to stop at a level boundary ends with ``/``: ``nav/can/can1/`` selects
every single-frame topic of bus ``can1`` but not ``nav/can/can10/...``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from rovbus.errors import EnvelopeError

__all__ = [
    "Topic",
    "TopicKind",
    "batch_topic",
    "can_topic",
    "check_name",
    "heartbeat_topic",
    "helm_topic",
    "log_topic",
    "parse_topic",
    "signal_topic",
    "status_topic",
]

TopicKind = Literal["can", "hb", "status", "helm", "log", "sig"]

_MAX_SFF = 0x7FF
_MAX_EFF = 0x1FFFFFFF
_HEX_UPPER = frozenset("0123456789ABCDEF")


def _name_problem(name: object) -> str | None:
    if not isinstance(name, str):
        return f"must be a string, got {type(name).__name__}"
    if not name:
        return "must not be empty"
    for i, c in enumerate(name):
        if c == "/":
            return f"must not contain '/' (at position {i})"
        if not "!" <= c <= "~":
            kind = "whitespace" if c.isspace() else "a non-printable or non-ASCII character"
            return f"must be printable ASCII without whitespace, has {kind} {c!r} at position {i}"
    return None


def check_name(name: str, what: str) -> str:
    """Return ``name`` if it can be one topic level (a node, bus or message name).

    A name is non-empty printable ASCII with no ``/`` and no whitespace; anything else
    raises ``ValueError`` saying which ``what`` (e.g. ``"node"``) is wrong and why.
    """
    problem = _name_problem(name)
    if problem is not None:
        raise ValueError(f"{what} name {name!r} {problem}")
    return name


@lru_cache(maxsize=256)
def _can_prefix(node: str, bus: str) -> str:
    check_name(node, "node")
    check_name(bus, "bus")
    return f"{node}/can/{bus}/"


def can_topic(node: str, bus: str, arbitration_id: int, extended: bool) -> str:
    """``<node>/can/<bus>/<ID>``: ``can_topic("nav", "can1", 0x18FEF100, True)`` is
    ``"nav/can/can1/18FEF100"``. Raises ``ValueError`` for bad names or an ID out of range.
    """
    prefix = _can_prefix(node, bus)
    if extended:
        if not 0 <= arbitration_id <= _MAX_EFF:
            raise ValueError(f"29-bit CAN ID {arbitration_id:#x} is outside 0..0x1FFFFFFF")
        return f"{prefix}{arbitration_id:08X}"
    if not 0 <= arbitration_id <= _MAX_SFF:
        raise ValueError(f"11-bit CAN ID {arbitration_id:#x} is outside 0..0x7FF")
    return f"{prefix}{arbitration_id:03X}"


def batch_topic(node: str, bus: str) -> str:
    """``<node>/can/<bus>``: batched frames of one bus."""
    return _can_prefix(node, bus)[:-1]


def heartbeat_topic(node: str) -> str:
    """``<node>/hb``."""
    return f"{check_name(node, 'node')}/hb"


def status_topic(node: str) -> str:
    """``<node>/status``."""
    return f"{check_name(node, 'node')}/status"


def helm_topic(node: str) -> str:
    """``<node>/helm``."""
    return f"{check_name(node, 'node')}/helm"


def log_topic(node: str) -> str:
    """``<node>/log``."""
    return f"{check_name(node, 'node')}/log"


def signal_topic(node: str, bus: str, message: str) -> str:
    """``<node>/sig/<bus>/<message>``: decoded signals of one DBC message."""
    check_name(node, "node")
    check_name(bus, "bus")
    check_name(message, "signal message")
    return f"{node}/sig/{bus}/{message}"


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed topic. Fields that the kind has no level for are ``None``.

    ``str(topic)`` gives the topic string back.
    """

    node: str
    kind: TopicKind
    bus: str | None = None
    arbitration_id: int | None = None
    extended: bool | None = None
    name: str | None = None

    def __str__(self) -> str:
        if self.kind == "can":
            base = f"{self.node}/can/{self.bus}"
            if self.arbitration_id is None:
                return base
            width = 8 if self.extended else 3
            return f"{base}/{self.arbitration_id:0{width}X}"
        if self.kind == "sig":
            return f"{self.node}/sig/{self.bus}/{self.name}"
        return f"{self.node}/{self.kind}"


#: the kinds of topic with no level after the kind
_SINGLE_LEVEL: dict[str, TopicKind] = {"hb": "hb", "status": "status", "helm": "helm", "log": "log"}


def _level(topic: str, value: str, what: str) -> str:
    problem = _name_problem(value)
    if problem is not None:
        raise EnvelopeError(f"topic {topic!r}: {what} name {value!r} {problem}")
    return value


def parse_topic(topic: str | bytes) -> Topic:
    """Parse a topic (str, or the ASCII bytes of a pub identity frame).

    Raises ``EnvelopeError`` saying what is wrong with any other shape.
    """
    if isinstance(topic, bytes):
        try:
            topic = topic.decode("ascii")
        except UnicodeDecodeError:
            raise EnvelopeError(f"topic {topic!r:.80} is not ASCII") from None
    if not isinstance(topic, str):
        raise EnvelopeError(f"topic must be a string, got {type(topic).__name__}")
    parts = topic.split("/")
    n = len(parts)
    if n < 2:
        raise EnvelopeError(f"topic {topic!r}: expected <node>/<kind>..., got no '/'")
    node = _level(topic, parts[0], "node")
    kind = parts[1]
    if kind in _SINGLE_LEVEL:
        if n != 2:
            raise EnvelopeError(f"topic {topic!r}: a {kind!r} topic has no level after {kind!r}")
        return Topic(node, _SINGLE_LEVEL[kind])
    if kind == "can":
        if n == 3:
            return Topic(node, "can", _level(topic, parts[2], "bus"))
        if n != 4:
            raise EnvelopeError(f"topic {topic!r}: expected <node>/can/<bus>[/<ID>]")
        bus = _level(topic, parts[2], "bus")
        digits = parts[3]
        if len(digits) not in (3, 8) or not _HEX_UPPER.issuperset(digits):
            raise EnvelopeError(
                f"topic {topic!r}: CAN ID {digits!r} is not 3 or 8 upper-case hex digits"
            )
        value = int(digits, 16)
        extended = len(digits) == 8
        if value > (_MAX_EFF if extended else _MAX_SFF):
            bits = 29 if extended else 11
            raise EnvelopeError(f"topic {topic!r}: CAN ID {digits} does not fit {bits} bits")
        return Topic(node, "can", bus, value, extended)
    if kind == "sig":
        if n != 4:
            raise EnvelopeError(f"topic {topic!r}: expected <node>/sig/<bus>/<message>")
        bus = _level(topic, parts[2], "bus")
        return Topic(node, "sig", bus, name=_level(topic, parts[3], "signal message"))
    raise EnvelopeError(
        f"topic {topic!r}: unknown kind {kind!r}, expected can, hb, status, log or sig"
    )
