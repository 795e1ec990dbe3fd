"""One CAN frame as a wire value, and its content forms.

:class:`CanFrame` is the frozen value every layer passes around. It converts to and from
the per-frame content dict (field names fixed by docs/protocol.md), the compact batch
content (many frames of one bus in one message) and python-can's ``can.Message``.

These paths run for every frame, tens of thousands a second: plain checks, no pydantic.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal

from rovbus.errors import EnvelopeError
from rovbus.wire.origin import Origin

if TYPE_CHECKING:
    import can

__all__ = [
    "FD_LENGTHS",
    "FLAG_BRS",
    "FLAG_ERR",
    "FLAG_ESI",
    "FLAG_EXT",
    "FLAG_FD",
    "FLAG_RTR",
    "FLAG_TX",
    "REMOTE_DLC_SHIFT",
    "CanFrame",
    "Direction",
    "batch_content",
    "frames_from_batch",
]

Direction = Literal["rx", "tx"]

#: Batch flag bits (``[ts, id, flags, data]`` entries of :func:`batch_content`).
FLAG_EXT = 0x01
FLAG_RTR = 0x02
FLAG_ERR = 0x04
FLAG_FD = 0x08
FLAG_BRS = 0x10
FLAG_ESI = 0x20
FLAG_TX = 0x40
#: A remote frame's dlc (requested length) rides in bits 8-15 of the batch flags.
REMOTE_DLC_SHIFT = 8
_FLAG_MASK = 0x7F
_KNOWN_FLAGS = _FLAG_MASK | (0xFF << REMOTE_DLC_SHIFT)

#: The data lengths a CAN FD frame can have (its 4-bit DLC code maps to these).
FD_LENGTHS = frozenset((0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 20, 24, 32, 48, 64))

_MAX_SFF = 0x7FF
_MAX_EFF = 0x1FFFFFFF
_INF = math.inf


class _FieldError(ValueError):
    """A ValueError that knows which content field (``key``) it is about."""

    def __init__(self, attr: str, key: str, detail: str) -> None:
        super().__init__(f"invalid CanFrame {attr}: {detail}")
        self.key = key
        self.detail = detail


@dataclass(frozen=True, slots=True, init=False)
class CanFrame:
    """One classic or FD CAN frame (data, remote or error frame) seen on one bus.

    ``dlc`` is the data length in bytes, as in python-can, not the 4-bit DLC code: for
    data frames it equals ``len(data)``, for remote frames it is the requested length
    (0-8). Leave it at the default ``-1`` to derive it (``len(data)``, or 0 for remote
    frames); with ``dataclasses.replace`` pass ``dlc=-1`` when changing ``data``.
    ``timestamp`` is UTC epoch seconds when the node received or sent the frame.
    For an error frame, ``arbitration_id`` holds the error class bits (CAN_ERR_MASK).
    ``origin`` says which request (or the node itself) caused a transmitted frame; it is
    not part of the frame's value (equality and hash leave it out).

    Raises ``ValueError`` naming the field for anything a CAN controller could not carry.
    """

    bus: str
    arbitration_id: int
    data: bytes = b""
    is_extended_id: bool = False
    is_remote_frame: bool = False
    is_error_frame: bool = False
    is_fd: bool = False
    bitrate_switch: bool = False
    error_state_indicator: bool = False
    dlc: int = -1
    timestamp: float = 0.0
    direction: Direction = "rx"
    origin: Origin | None = field(default=None, compare=False, repr=False)

    # A frozen dataclass's generated __init__ sets each field through
    # ``object.__setattr__``: about 2.3 µs for these twelve, most of the cost of a frame on
    # the receive path. The slots' own descriptors (``_SETTERS``, bound below the class) do
    # the same in a third of the time.
    def __init__(
        self,
        bus: str,
        arbitration_id: int,
        data: bytes = b"",
        is_extended_id: bool = False,
        is_remote_frame: bool = False,
        is_error_frame: bool = False,
        is_fd: bool = False,
        bitrate_switch: bool = False,
        error_state_indicator: bool = False,
        dlc: int = -1,
        timestamp: float = 0.0,
        direction: Direction = "rx",
        origin: Origin | None = None,
    ) -> None:
        s_bus, s_id, s_data, s_ext, s_rtr, s_err, s_fd, s_brs, s_esi, s_dlc, s_ts, s_dir, s_org = (
            _SETTERS
        )
        s_bus(self, bus)
        s_id(self, arbitration_id)
        s_data(self, data)
        s_ext(self, is_extended_id)
        s_rtr(self, is_remote_frame)
        s_err(self, is_error_frame)
        s_fd(self, is_fd)
        s_brs(self, bitrate_switch)
        s_esi(self, error_state_indicator)
        s_dlc(self, dlc)
        s_ts(self, timestamp)
        s_dir(self, direction)
        s_org(self, origin)
        self._validate()

    def _validate(self) -> None:
        data = self.data
        if type(data) is not bytes:
            if not isinstance(data, bytearray | memoryview):
                raise _FieldError("data", "data", f"expected bytes, got {type(data).__name__}")
            data = bytes(data)
            _SETTERS[2](self, data)
        aid = self.arbitration_id
        if self.is_extended_id:
            if not 0 <= aid <= _MAX_EFF:
                raise _FieldError(
                    "arbitration_id", "id", f"{aid:#x} is outside the 29-bit range 0..0x1FFFFFFF"
                )
        elif not 0 <= aid <= _MAX_SFF:
            raise _FieldError(
                "arbitration_id", "id", f"{aid:#x} is outside the 11-bit range 0..0x7FF"
            )
        if not self.is_fd:
            if self.bitrate_switch:
                raise _FieldError("bitrate_switch", "brs", "bitrate switch needs a CAN FD frame")
            if self.error_state_indicator:
                raise _FieldError(
                    "error_state_indicator", "esi", "error state indicator needs a CAN FD frame"
                )
        n = len(data)
        dlc = self.dlc
        if self.is_remote_frame:
            if self.is_fd:
                raise _FieldError("is_remote_frame", "rtr", "CAN FD has no remote frames")
            if self.is_error_frame:
                raise _FieldError("is_remote_frame", "rtr", "an error frame cannot be remote")
            if n:
                raise _FieldError("data", "data", f"a remote frame carries no data, got {n} bytes")
            if dlc == -1:
                _SETTERS[9](self, 0)
            elif type(dlc) is not int or not 0 <= dlc <= 8:
                raise _FieldError(
                    "dlc", "dlc", f"a remote frame requests 0..8 bytes, got dlc {dlc!r}"
                )
        else:
            if self.is_fd:
                if n not in FD_LENGTHS:
                    raise _FieldError(
                        "data",
                        "data",
                        f"a CAN FD frame carries 0-8, 12, 16, 20, 24, 32, 48 or 64 bytes, got {n}",
                    )
            elif n > 8:
                raise _FieldError(
                    "data", "data", f"a classic CAN frame carries at most 8 bytes, got {n}"
                )
            if dlc == -1:
                _SETTERS[9](self, n)
            elif dlc != n:
                raise _FieldError(
                    "dlc", "dlc", f"dlc {dlc!r} differs from the data length {n} of a data frame"
                )
        if not 0.0 <= self.timestamp < _INF:
            raise _FieldError(
                "timestamp", "ts", f"expected finite epoch seconds >= 0, got {self.timestamp!r}"
            )
        if self.direction != "rx" and self.direction != "tx":
            raise _FieldError("direction", "dir", f"expected 'rx' or 'tx', got {self.direction!r}")

    # -- content dict -------------------------------------------------------------------

    def to_content(self) -> dict[str, Any]:
        """The per-frame content dict (field names fixed by docs/protocol.md); a frame
        with an origin has it under ``origin``."""
        content: dict[str, Any] = {
            "bus": self.bus,
            "id": self.arbitration_id,
            "ext": self.is_extended_id,
            "rtr": self.is_remote_frame,
            "err": self.is_error_frame,
            "fd": self.is_fd,
            "brs": self.bitrate_switch,
            "esi": self.error_state_indicator,
            "dlc": self.dlc,
            "data": self.data,
            "ts": self.timestamp,
            "dir": self.direction,
        }
        if self.origin is not None:
            content["origin"] = self.origin.to_content()
        return content

    @classmethod
    def from_content(cls, content: Mapping[str, Any]) -> CanFrame:
        """Read a per-frame content dict; unknown extra keys are ignored.

        Raises ``EnvelopeError`` naming the field for anything missing, mistyped or
        invalid. ``ts`` may be an int; every other field must have its exact type.
        """
        if not isinstance(content, Mapping):
            raise EnvelopeError(f"CAN frame content must be a map, got {type(content).__name__}")
        try:
            bus, aid, ext, rtr, err, fd, brs, esi, dlc, data, ts, direction = _fields_of(content)
        except KeyError as exc:
            raise EnvelopeError(f"CAN frame content: missing field {exc.args[0]!r}") from None
        if type(bus) is not str:
            raise _mistyped("bus", "a string", bus)
        if type(aid) is not int:
            raise _mistyped("id", "an integer", aid)
        if type(ext) is not bool or type(rtr) is not bool or type(err) is not bool:
            key = next(k for k in ("ext", "rtr", "err") if type(content[k]) is not bool)
            raise _mistyped(key, "a boolean", content[key])
        if type(fd) is not bool or type(brs) is not bool or type(esi) is not bool:
            key = next(k for k in ("fd", "brs", "esi") if type(content[k]) is not bool)
            raise _mistyped(key, "a boolean", content[key])
        if type(dlc) is not int:
            raise _mistyped("dlc", "an integer", dlc)
        if type(data) is not bytes:
            raise _mistyped("data", "bytes", data)
        if type(ts) is not float:
            if type(ts) is not int:
                raise _mistyped("ts", "a number", ts)
            ts = float(ts)
        rx_tx: Direction
        if direction == "rx":
            rx_tx = "rx"
        elif direction == "tx":
            rx_tx = "tx"
        else:
            raise EnvelopeError(
                f"CAN frame content: field 'dir': expected 'rx' or 'tx', got {direction!r:.40}"
            )
        if dlc == -1:  # -1 means "derive" to the constructor; on the wire it is invalid
            raise EnvelopeError("CAN frame content: field 'dlc': -1 is not a length")
        origin = content.get("origin")
        if origin is not None:
            try:
                origin = Origin.from_content(origin)
            except EnvelopeError as exc:
                raise EnvelopeError(f"CAN frame content: {exc}") from None
        try:
            return cls(bus, aid, data, ext, rtr, err, fd, brs, esi, dlc, ts, rx_tx, origin)
        except _FieldError as exc:
            raise EnvelopeError(f"CAN frame content: field {exc.key!r}: {exc.detail}") from None

    # -- python-can ---------------------------------------------------------------------

    @classmethod
    def from_can_message(
        cls, msg: can.Message, bus: str, direction: Direction | None = None
    ) -> CanFrame:
        """Convert a python-can message seen on ``bus`` (its ``channel`` is not used).

        ``direction`` defaults to the message's ``is_rx``. Raises ``ValueError`` if the
        message is not a frame a CAN controller could carry.
        """
        if direction is None:
            direction = "rx" if msg.is_rx else "tx"
        data = msg.data
        return cls(
            bus,
            msg.arbitration_id,
            b"" if data is None else bytes(data),
            bool(msg.is_extended_id),
            bool(msg.is_remote_frame),
            bool(msg.is_error_frame),
            bool(msg.is_fd),
            bool(msg.bitrate_switch),
            bool(msg.error_state_indicator),
            msg.dlc,
            float(msg.timestamp),
            direction,
        )

    def to_can_message(self) -> can.Message:
        """A new python-can message with everything this frame carries (channel=bus)."""
        import can  # lazily: importing python-can costs the CLI start-up time

        return can.Message(
            timestamp=self.timestamp,
            arbitration_id=self.arbitration_id,
            is_extended_id=self.is_extended_id,
            is_remote_frame=self.is_remote_frame,
            is_error_frame=self.is_error_frame,
            channel=self.bus,
            dlc=self.dlc,
            data=self.data,
            is_fd=self.is_fd,
            is_rx=self.direction == "rx",
            bitrate_switch=self.bitrate_switch,
            error_state_indicator=self.error_state_indicator,
        )


#: the slot descriptors' ``__set__``, in field order (they bypass the frozen ``__setattr__``)
_SETTERS: tuple[Callable[[CanFrame, Any], None], ...] = tuple(
    CanFrame.__dict__[f.name].__set__ for f in fields(CanFrame)
)


#: a frame's content fields in ``from_content``'s order (``KeyError`` names one missing)
_fields_of = operator.itemgetter(
    "bus", "id", "ext", "rtr", "err", "fd", "brs", "esi", "dlc", "data", "ts", "dir"
)


def _mistyped(key: str, expected: str, value: object) -> EnvelopeError:
    return EnvelopeError(
        f"CAN frame content: field {key!r}: expected {expected}, got {type(value).__name__}"
    )


# -- batch ------------------------------------------------------------------------------


def batch_content(bus: str, frames: Sequence[CanFrame]) -> dict[str, Any]:
    """Compact content for many frames of one bus: ``{"bus", "frames": [[ts, id, flags,
    data], ...]}`` with ``flags`` built from the ``FLAG_*`` bits (a remote frame's dlc in
    bits 8-15). Frames with an origin add ``"origins": [[first, count, origin], ...]``, one
    entry per run of consecutive frames of one origin. Raises ``ValueError`` if a frame
    belongs to another bus.
    """
    entries: list[list[Any]] = []
    append = entries.append
    runs: list[list[Any]] = []  # [first, count, origin]: only transmitted frames have one
    for f in frames:
        if f.bus != bus:
            raise ValueError(f"batch for bus {bus!r} got a frame of bus {f.bus!r}")
        flags = (
            f.is_extended_id
            | f.is_remote_frame << 1
            | f.is_error_frame << 2
            | f.is_fd << 3
            | f.bitrate_switch << 4
            | f.error_state_indicator << 5
            | (f.direction == "tx") << 6
        )
        if f.is_remote_frame:
            flags |= f.dlc << REMOTE_DLC_SHIFT
        append([f.timestamp, f.arbitration_id, flags, f.data])
        if f.origin is not None:
            _add_to_runs(runs, len(entries) - 1, f.origin)
    if not runs:
        return {"bus": bus, "frames": entries}
    origins = [[first, count, origin.to_content()] for first, count, origin in runs]
    return {"bus": bus, "frames": entries, "origins": origins}


def frames_from_batch(content: Mapping[str, Any]) -> list[CanFrame]:
    """Read batch content; raises ``EnvelopeError`` naming the bad entry's index and field."""
    if not isinstance(content, Mapping):
        raise EnvelopeError(f"CAN batch content must be a map, got {type(content).__name__}")
    if "bus" not in content:
        raise EnvelopeError("CAN batch content: missing field 'bus'")
    if "frames" not in content:
        raise EnvelopeError("CAN batch content: missing field 'frames'")
    bus = content["bus"]
    entries = content["frames"]
    if type(bus) is not str:
        raise EnvelopeError(
            f"CAN batch content: field 'bus': expected a string, got {type(bus).__name__}"
        )
    if type(entries) is not list and type(entries) is not tuple:
        raise EnvelopeError(
            f"CAN batch content: field 'frames': expected a list, got {type(entries).__name__}"
        )
    origin_of = _batch_origins(content.get("origins"), len(entries))
    out: list[CanFrame] = []
    append = out.append
    for i, entry in enumerate(entries):
        if (type(entry) is not list and type(entry) is not tuple) or len(entry) != 4:
            raise _bad_entry(i, None, "expected [ts, id, flags, data]")
        ts, aid, flags, data = entry
        if type(ts) is not float:
            if type(ts) is not int:
                raise _bad_entry(i, "ts", f"expected a number, got {type(ts).__name__}")
            ts = float(ts)
        if type(aid) is not int:
            raise _bad_entry(i, "id", f"expected an integer, got {type(aid).__name__}")
        if type(flags) is not int:
            raise _bad_entry(i, "flags", f"expected an integer, got {type(flags).__name__}")
        if type(data) is not bytes:
            raise _bad_entry(i, "data", f"expected bytes, got {type(data).__name__}")
        if flags & ~_KNOWN_FLAGS:
            raise _bad_entry(i, "flags", f"unknown bits in {flags:#x}")
        rtr = bool(flags & FLAG_RTR)
        dlc = flags >> REMOTE_DLC_SHIFT if rtr else len(data)
        if not rtr and flags >> REMOTE_DLC_SHIFT:
            raise _bad_entry(i, "flags", f"dlc bits set on a data frame in {flags:#x}")
        try:
            frame = CanFrame(
                bus,
                aid,
                data,
                bool(flags & FLAG_EXT),
                rtr,
                bool(flags & FLAG_ERR),
                bool(flags & FLAG_FD),
                bool(flags & FLAG_BRS),
                bool(flags & FLAG_ESI),
                dlc,
                ts,
                "tx" if flags & FLAG_TX else "rx",
                origin_of.get(i) if origin_of else None,
            )
        except _FieldError as exc:
            key = exc.key if exc.key in ("ts", "id", "data") else "flags"
            raise _bad_entry(i, key, exc.detail) from None
        append(frame)
    return out


def _add_to_runs(runs: list[list[Any]], index: int, origin: Origin) -> None:
    """Frame ``index`` has ``origin``: one more frame in the last run, or a new run."""
    if runs:
        last = runs[-1]
        if last[2] is origin and last[0] + last[1] == index:
            last[1] += 1
            return
    runs.append([index, 1, origin])


def _batch_origins(runs: object, count: int) -> dict[int, Origin]:
    """The origin of each frame index a batch's ``origins`` names (``[[first, count,
    origin], ...]``, in frame order, not overlapping); raises ``EnvelopeError`` naming the
    bad run."""
    if runs is None:
        return {}
    if type(runs) is not list and type(runs) is not tuple:
        raise EnvelopeError(
            f"CAN batch content: field 'origins': expected a list, got {type(runs).__name__}"
        )
    found: dict[int, Origin] = {}
    end = 0
    for i, run in enumerate(runs):
        where = f"CAN batch content: origins[{i}]"
        if (type(run) is not list and type(run) is not tuple) or len(run) != 3:
            raise EnvelopeError(f"{where}: expected [first, count, origin]")
        first, n, origin = run
        if type(first) is not int or type(n) is not int or first < 0 or n < 1:
            raise EnvelopeError(f"{where}: first and count must be integers >= 0 and >= 1")
        if first < end or first + n > count:
            raise EnvelopeError(
                f"{where}: frames {first}..{first + n - 1} overlap an earlier run or are not "
                f"among the {count} frames"
            )
        end = first + n
        try:
            value = Origin.from_content(origin)
        except EnvelopeError as exc:
            raise EnvelopeError(f"{where}: {exc}") from None
        for index in range(first, first + n):
            found[index] = value
    return found


def _bad_entry(index: int, key: str | None, detail: str) -> EnvelopeError:
    where = f"frames[{index}]" if key is None else f"frames[{index}] field {key!r}"
    return EnvelopeError(f"CAN batch content: {where}: {detail}")
