"""Where a transmitted frame came from: the request that caused it, or the node itself.

An :class:`Origin` rides with every frame a node puts on a bus (``CanFrame.origin``): on
the transmit queue, in the node's transmit log, and in the ``tx`` frames the node publishes
back (the ``origin`` map of a frame's content, ``origins`` of a batch; docs/protocol.md).

``by`` is the request header's ``username``: claimed, not proved, whoever holds the
signing key can write any name. ``key`` is the name of the CURVE key the request crossed
the tether with, which the forwarder writes from the handshake it authenticated (empty
when the request did not cross a CURVE tether). A frame the node writes itself (a
failsafe frame) has no request: ``msg_id`` is empty and ``by`` names the node.

Texts are cut to fixed lengths, so what a node keeps per frame is bounded whatever a
client puts in its header.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rovbus.errors import EnvelopeError

__all__ = ["CURVE_KEY", "ID_MAX", "REASON_MAX", "Origin"]

#: the request ``metadata`` key under which a forwarder names the CURVE key the request
#: crossed the tether with (rovbus.forwarder.curvekey)
CURVE_KEY = "curve_key"

#: the longest ``by``, ``msg_id``, ``session`` and ``key`` kept (characters)
ID_MAX = 64
#: the longest ``reason`` kept (characters)
REASON_MAX = 200

_TEXT_FIELDS = (("by", ID_MAX), ("msg_id", ID_MAX), ("session", ID_MAX), ("key", ID_MAX))


@dataclass(frozen=True, slots=True)
class Origin:
    """Who caused a transmitted frame, by which request, when, and why.

    ``at`` is UTC epoch seconds on the node's clock when the node accepted the request (or
    decided to write the frame itself).
    """

    by: str
    msg_id: str
    at: float
    session: str = ""
    key: str = ""
    reason: str = ""

    @classmethod
    def of_request(
        cls, header: Mapping[str, Any], *, at: float, key: str = "", reason: str = ""
    ) -> Origin:
        """The origin of frames a request with ``header`` asked for; ``key`` the CURVE key
        name the request crossed the tether with, if any."""
        return cls(
            _text(header.get("username")),
            _text(header.get("msg_id")),
            at,
            _text(header.get("session")),
            key[:ID_MAX],
            reason[:REASON_MAX],
        )

    @classmethod
    def own(cls, node: str, reason: str, *, at: float) -> Origin:
        """The origin of frames node ``node`` writes by itself, e.g. ``reason`` "lease
        expired" for failsafe frames."""
        return cls(node[:ID_MAX], "", at, "", "", reason[:REASON_MAX])

    @property
    def requested(self) -> bool:
        """False for frames the node wrote by itself."""
        return bool(self.msg_id)

    def to_content(self) -> dict[str, Any]:
        """The ``origin`` map of a tx frame's content (docs/protocol.md)."""
        content: dict[str, Any] = {"by": self.by, "msg_id": self.msg_id, "at": self.at}
        if self.session:
            content["session"] = self.session
        if self.key:
            content["key"] = self.key
        if self.reason:
            content["reason"] = self.reason
        return content

    @classmethod
    def from_content(cls, content: object) -> Origin:
        """Read an ``origin`` map; unknown keys are ignored, texts cut to their lengths.
        Raises ``EnvelopeError`` naming the field that is missing or mistyped."""
        if not isinstance(content, Mapping):
            raise EnvelopeError(f"origin: expected a map, got {type(content).__name__}")
        texts: dict[str, str] = {}
        for name, limit in (*_TEXT_FIELDS, ("reason", REASON_MAX)):
            value = content.get(name, "")
            if type(value) is not str:
                raise EnvelopeError(
                    f"origin: field {name!r}: expected a string, got {type(value).__name__}"
                )
            texts[name] = value[:limit]
        at = content.get("at")
        if type(at) is not float and type(at) is not int:
            raise EnvelopeError(f"origin: field 'at': expected a number, got {type(at).__name__}")
        if not math.isfinite(at) or at < 0:
            raise EnvelopeError(f"origin: field 'at': expected epoch seconds >= 0, got {at!r}")
        return cls(**texts, at=float(at))

    def describe(self) -> str:
        """One line for people: ``by alice key operator msg 5f1c... (reason)``; what is
        not printable in the texts (a client writes its own username) shows escaped."""
        if self.requested:
            words = [f"by {_shown(self.by) or '?'}"]
            if self.key:
                words.append(f"key {_shown(self.key)}")
            words.append(f"msg {_shown(self.msg_id)}")
        else:
            words = [f"by node {_shown(self.by)}"]
        if self.reason:
            words.append(f"({_shown(self.reason)})")
        return " ".join(words)


def _text(value: object) -> str:
    return value[:ID_MAX] if isinstance(value, str) else ""


def _shown(text: str) -> str:
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")
