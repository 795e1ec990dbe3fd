"""What a node's requests carry, read and checked: the frames of a ``can_send_request``,
the reason given for turning transmit on or off. Bad arguments raise ``ValueError``, which
the dispatcher (rovbus/daemon/dispatch.py) turns into an error reply."""

from __future__ import annotations

import time
from typing import Any

from rovbus.errors import EnvelopeError
from rovbus.wire.canframe import CanFrame
from rovbus.wire.cantext import parse_cansend
from rovbus.wire.message import Message
from rovbus.wire.origin import CURVE_KEY, Origin


def frames_to_send(content: dict[str, Any]) -> tuple[str, list[CanFrame]]:
    """The bus and frames of a ``can_send_request``.

    ``content`` is ``{"bus": NAME, "frames": [...]}`` where each frame is either a string in
    cansend syntax or a CAN frame content dict (its ``bus`` may be left out). The first bad
    frame raises ``ValueError`` naming its index.
    """
    bus = content.get("bus")
    if not isinstance(bus, str) or not bus:
        raise ValueError("can_send_request needs 'bus', the name of one of the node's buses")
    raw = content.get("frames")
    if not isinstance(raw, list) or not raw:
        raise ValueError("can_send_request needs 'frames', a non-empty list")
    frames: list[CanFrame] = []
    for index, item in enumerate(raw):
        try:
            if isinstance(item, str):
                frame = parse_cansend(item, bus)
            elif isinstance(item, dict):
                # an origin is the node's to write: one in the request is not read
                frame = CanFrame.from_content(
                    {**_frame_defaults(bus, item), **item, "origin": None}
                )
            else:
                raise ValueError(f"expected a cansend string or a frame map, got {item!r}")
        except (EnvelopeError, ValueError) as exc:
            raise ValueError(f"frame {index}: {exc}") from None
        if frame.bus != bus:
            raise ValueError(f"frame {index}: names bus {frame.bus!r}, the request says {bus!r}")
        frames.append(frame)
    return bus, frames


def origin_of(request: Message) -> Origin:
    """The origin of the frames ``request`` asks the node to transmit: its header's
    username, session and msg_id, the CURVE key a forwarder named in its metadata, and now
    on the node's clock."""
    key = request.metadata.get(CURVE_KEY)
    return Origin.of_request(
        request.header, at=time.time(), key=key if isinstance(key, str) else ""
    )


def _frame_defaults(bus: str, item: dict[str, Any]) -> dict[str, Any]:
    """What a frame map in a request may leave out: flags off, dlc from the data, and an
    extended ID when the ID does not fit in 11 bits."""
    arbitration_id = item.get("id")
    data = item.get("data", b"")
    return {
        "bus": bus,
        "ext": isinstance(arbitration_id, int) and arbitration_id > 0x7FF,
        "rtr": False,
        "err": False,
        "fd": False,
        "brs": False,
        "esi": False,
        "data": b"",
        "dlc": len(data) if isinstance(data, bytes) else 0,
        "ts": 0.0,
        "dir": "tx",
    }


#: the longest ``reason`` a node takes for turning transmit on or off (characters)
REASON_MAX = 200


def tx_reason(value: object, *, required: bool) -> str:
    """The reason given for turning transmit on (``required``) or off: one line of
    printable text, at most ``REASON_MAX`` characters, stripped; ``""`` when none is given
    and none is required. Raises ``ValueError`` saying what is wrong."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise ValueError(f"'reason' must be text, got {type(value).__name__}")
    reason = value.strip()
    if not reason:
        if required:
            raise ValueError(
                "turning transmit on needs a reason: why it may go on again, in one line of "
                "text ('reason'); the node logs it and publishes it on <node>/status with "
                "who asked"
            )
        return ""
    if len(reason) > REASON_MAX:
        raise ValueError(f"'reason' has {len(reason)} characters; at most {REASON_MAX}")
    if not reason.isprintable():
        raise ValueError("'reason' must be one line of printable text")
    return reason


def tx_off_reason(value: object) -> str:
    """The reason given for turning transmit off, or ``""``: an emergency stop never fails
    on its wording, so a reason that is not one line of text is left out."""
    try:
        return tx_reason(value, required=False)
    except ValueError:
        return ""
