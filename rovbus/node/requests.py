"""Replies to the requests a node answers on its shell and control channels.

Each handler takes the request and returns the reply's content; the daemon wraps it in a
reply envelope, with Jupyter's busy/idle status around it. A handler that fails raises a
``RovbusError`` (or ``ValueError`` for bad arguments), which becomes an error reply in
Jupyter's form: ``{"status": "error", "ename", "evalue", "traceback"}``.
"""

from __future__ import annotations

from typing import Any

from rovbus import __version__
from rovbus.errors import EnvelopeError
from rovbus.wire.canframe import CanFrame
from rovbus.wire.cantext import parse_cansend
from rovbus.wire.message import PROTOCOL_VERSION

#: shell requests a node answers, and the reply type of each
SHELL_REQUESTS = (
    "kernel_info_request",
    "node_info_request",
    "can_send_request",
    "stats_request",
    "execute_request",
)
#: control requests a node answers
CONTROL_REQUESTS = (
    "kernel_info_request",
    "shutdown_request",
    "interrupt_request",
    "tx_off_request",
    "tx_on_request",
)


def kernel_info(implementation: str, banner: str) -> dict[str, Any]:
    """A kernel_info_reply that jupyter_client accepts (node and forwarder alike)."""
    return {
        "status": "ok",
        "protocol_version": PROTOCOL_VERSION,
        "implementation": implementation,
        "implementation_version": __version__,
        "language_info": {
            "name": "rovbus",
            "version": __version__,
            "mimetype": "text/plain",
            "file_extension": ".txt",
        },
        "banner": banner,
        "help_links": [],
    }


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
                frame = CanFrame.from_content({**_frame_defaults(bus, item), **item})
            else:
                raise ValueError(f"expected a cansend string or a frame map, got {item!r}")
        except (EnvelopeError, ValueError) as exc:
            raise ValueError(f"frame {index}: {exc}") from None
        if frame.bus != bus:
            raise ValueError(f"frame {index}: names bus {frame.bus!r}, the request says {bus!r}")
        frames.append(frame)
    return bus, frames


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
