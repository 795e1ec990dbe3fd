"""A bus's helm in the system file: the actuator frames that need it, and their safe state.

::

    [[nodes.propulsion.buses]]
    name = "can0"
    tx_allow = ["0x200-0x20F", "0x210"]
    helm = { ids = ["0x200-0x20F"], failsafe = ["210#01"], lease_ms = 500, repeat_ms = 100 }

- ``ids``: the IDs only the holder of the helm may send, in ``tx_allow``'s syntax.
- ``failsafe``: the frames that make the actuators safe (zero thrust, all-stop), in
  cansend syntax; classic data frames (``ID#DATA``, 3 hex digits for an 11-bit ID, 8 for
  a 29-bit one). The node writes them itself when no one holds the helm, and anyone
  allowed to transmit on the bus may send them: stopping is never gated.
- ``lease_ms``: how long the holder's last helm frame or renewal keeps the helm.
- ``repeat_ms``: how often the failsafe frames are written again while no one holds the
  helm (0: once; some ESCs fault without a command every 100 ms).

The node's state machine is ``rovbus.node.helm``; check-config checks a helm in
``rovbus.config.checks`` (``check_helms``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, PlainValidator

from rovbus.config.problems import describe
from rovbus.config.txallow import MAX_EXTENDED_ID, MAX_STANDARD_ID, TxAllowField

__all__ = ["FailsafeFrame", "HelmConfig", "parse_failsafe"]

_HEX = frozenset("0123456789abcdefABCDEF")


@dataclass(frozen=True, slots=True)
class FailsafeFrame:
    """One failsafe frame: a classic data frame, as written in the system file."""

    text: str
    arbitration_id: int
    extended: bool
    data: bytes

    def __str__(self) -> str:
        return self.text


def parse_failsafe(value: object) -> FailsafeFrame:
    """``"210#01"`` or ``"18FF5000#0000"`` -> a :class:`FailsafeFrame`; ValueError naming
    what is wrong. Remote, FD and error frames are not failsafe frames."""
    if isinstance(value, FailsafeFrame):
        return value
    if not isinstance(value, str):
        raise ValueError(
            f'expected a frame in cansend syntax such as "210#01", got {describe(value)}'
        )
    text = value.strip()
    head, sep, body = text.partition("#")
    if not sep:
        raise ValueError(f'"{text}" has no "#": a failsafe frame is ID#DATA, e.g. "210#01"')
    if len(head) not in (3, 8) or not set(head) <= _HEX:
        raise ValueError(
            f'"{text}": the ID must be 3 hex digits (11-bit) or 8 (29-bit), got "{head}"'
        )
    arbitration_id = int(head, 16)
    extended = len(head) == 8
    if arbitration_id > (MAX_EXTENDED_ID if extended else MAX_STANDARD_ID):
        raise ValueError(f'"{text}": ID {head} is out of range')
    if body.startswith(("#", "R", "r")):
        raise ValueError(f'"{text}": a failsafe frame is a classic data frame (no FD, no R)')
    digits = body.replace(".", "")
    if len(digits) % 2 or not set(digits) <= _HEX:
        raise ValueError(f'"{text}": the data must be pairs of hex digits, got "{body}"')
    if len(digits) > 16:
        raise ValueError(f'"{text}": {len(digits) // 2} data bytes; a classic frame has at most 8')
    return FailsafeFrame(text, arbitration_id, extended, bytes.fromhex(digits))


FailsafeField = Annotated[
    FailsafeFrame, PlainValidator(parse_failsafe), PlainSerializer(str, return_type=str)
]


class HelmConfig(BaseModel):
    """``helm`` of a bus: see the module's doc."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    ids: TxAllowField
    failsafe: list[FailsafeField] = Field(min_length=1)
    lease_ms: int = Field(default=500, ge=20, le=60_000)
    repeat_ms: int = Field(default=0, ge=0, le=60_000)

    def needs_helm(self, arbitration_id: int, extended: bool, data: bytes) -> bool:
        """True for a frame only the holder may send: a helm ID, and not a failsafe frame."""
        if not self.ids.allows(arbitration_id, extended=extended):
            return False
        return not any(
            f.arbitration_id == arbitration_id and f.extended == extended and f.data == data
            for f in self.failsafe
        )
