"""Which CAN frames a node may transmit: arbitration IDs, each in its format.

A bus's ``tx_allow`` lists IDs and inclusive ranges, as strings in hex or decimal
(``"0x200-0x20F"``, ``"0x300"``, ``"768"``) or as TOML integers (``0x300``). Every entry
carries its frame format, because an 11-bit ID and the 29-bit ID of the same number are
different identifiers on the wire, and so different devices:

- an ID written up to 0x7FF is an 11-bit (standard) ID;
- ``ext:`` before an ID or range makes it 29-bit (extended): ``"ext:0x201"``,
  ``"ext:0x18FF5000-0x18FF50FF"``;
- an ID above 0x7FF can only be 29-bit, written with ``ext:`` or without; so a range
  across 0x7FF without ``ext:`` allows its part up to 0x7FF as 11-bit IDs and the rest as
  29-bit IDs.

Entries parse into :class:`AllowEntry` values (each knows what it allows, for
check-config's summary), and a :class:`TxAllowList` merges them into sorted ranges per
format, so the check on every transmitted frame costs one binary search. An empty list
allows nothing.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import GetPydanticSchema, PlainValidator
from pydantic_core import core_schema

from rovbus.config.problems import describe

__all__ = [
    "EXTENDED_MARK",
    "MAX_EXTENDED_ID",
    "MAX_STANDARD_ID",
    "AllowEntry",
    "TxAllowField",
    "TxAllowList",
    "format_id",
    "parse_entry",
    "parse_id",
]

#: the largest 11-bit (standard) arbitration ID
MAX_STANDARD_ID = 0x7FF
#: the largest 29-bit (extended) arbitration ID
MAX_EXTENDED_ID = 0x1FFFFFFF
#: what marks a ``tx_allow`` entry as 29-bit IDs
EXTENDED_MARK = "ext:"

Span = tuple[int, int]


def parse_id(text: str) -> int:
    """Parse one arbitration ID, hex (``0x1A0``) or decimal; raise ValueError if invalid."""
    stripped = text.strip()
    try:
        value = int(stripped, 16) if stripped.lower().startswith("0x") else int(stripped, 10)
    except ValueError:
        raise ValueError(f'"{text.strip()}" is not a number (hex 0x1A0 or decimal)') from None
    if not 0 <= value <= MAX_EXTENDED_ID:
        raise ValueError(f"{stripped} is out of the 29-bit ID range 0x0-0x1FFFFFFF")
    return value


def format_id(arbitration_id: int, extended: bool) -> str:
    """An ID as candump writes it, in hex: 3 digits for 11-bit, 8 for 29-bit."""
    return f"0x{arbitration_id:08X}" if extended else f"0x{arbitration_id:03X}"


def _format_span(span: Span, extended: bool) -> str:
    lo, hi = span
    if lo == hi:
        return format_id(lo, extended)
    return f"{format_id(lo, extended)}-{format_id(hi, extended)}"


def _format_spans(spans: Iterable[Span], extended: bool) -> str:
    return ", ".join(_format_span(span, extended) for span in spans) or "none"


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One ``tx_allow`` entry: its text and the IDs it allows in each format (or None)."""

    text: str
    standard: Span | None
    extended: Span | None

    def __str__(self) -> str:
        """What the entry allows, e.g. ``11-bit 0x200-0x20F``."""
        parts = []
        if self.standard is not None:
            parts.append(f"11-bit {_format_span(self.standard, False)}")
        if self.extended is not None:
            parts.append(f"29-bit {_format_span(self.extended, True)}")
        return " and ".join(parts)


def parse_entry(item: object) -> AllowEntry:
    """Parse ``"LO-HI"``, ``"ID"``, ``"ext:LO-HI"``, ``"ext:ID"`` or an integer.

    Raises ValueError naming the problem: neither a string nor an integer, not a number,
    out of the 29-bit range, a range whose start is above its end, or a mark other than
    ``ext:``.
    """
    if isinstance(item, bool) or not isinstance(item, int | str):
        raise ValueError(
            f'expected an ID or range like "0x200-0x20F" or "ext:0x18FF5000", got {describe(item)}'
        )
    extended = False
    if isinstance(item, int):
        if not 0 <= item <= MAX_EXTENDED_ID:
            raise ValueError(f"{item:#x} is out of the 29-bit ID range 0x0-0x1FFFFFFF")
        text, lo, hi = f"0x{item:X}", item, item
    else:
        text = body = item.strip()
        mark, colon, rest = text.partition(":")
        if colon:
            if mark.strip().lower() != EXTENDED_MARK[:-1]:
                raise ValueError(
                    f'"{text}": unknown mark "{mark.strip()}:"; only "{EXTENDED_MARK}" (29-bit '
                    "IDs) may come before an ID; an ID without it up to 0x7FF is 11-bit"
                )
            extended, body = True, rest
        lo_text, dash, hi_text = body.partition("-")
        lo = hi = parse_id(lo_text)  # without a dash, all of body
        if dash:
            hi = parse_id(hi_text)
            if lo > hi:
                raise ValueError(f'range "{text}" starts above its end (0x{lo:X} > 0x{hi:X})')
    if extended:
        return AllowEntry(text, None, (lo, hi))
    standard = (lo, min(hi, MAX_STANDARD_ID)) if lo <= MAX_STANDARD_ID else None
    beyond = (max(lo, MAX_STANDARD_ID + 1), hi) if hi > MAX_STANDARD_ID else None
    return AllowEntry(text, standard, beyond)


def _merge(spans: Iterable[Span]) -> tuple[Span, ...]:
    merged: list[Span] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


def _inside(spans: tuple[Span, ...], starts: tuple[int, ...], arbitration_id: int) -> bool:
    index = bisect_right(starts, arbitration_id) - 1
    return index >= 0 and arbitration_id <= spans[index][1]


@dataclass(frozen=True, slots=True)
class TxAllowList:
    """The entries of a ``tx_allow`` list, merged per format, with an O(log n) check."""

    entries: tuple[AllowEntry, ...] = ()
    #: merged inclusive ranges of 11-bit IDs, sorted
    standard: tuple[Span, ...] = field(default=(), init=False, compare=False)
    #: merged inclusive ranges of 29-bit IDs, sorted
    extended: tuple[Span, ...] = field(default=(), init=False, compare=False)
    _starts: tuple[tuple[int, ...], tuple[int, ...]] = field(
        default=((), ()), init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        standard = _merge(e.standard for e in self.entries if e.standard is not None)
        extended = _merge(e.extended for e in self.entries if e.extended is not None)
        object.__setattr__(self, "standard", standard)
        object.__setattr__(self, "extended", extended)
        starts = (tuple(lo for lo, _ in standard), tuple(lo for lo, _ in extended))
        object.__setattr__(self, "_starts", starts)

    @classmethod
    def parse(cls, items: Iterable[str | int]) -> TxAllowList:
        """Build from system-file items; raise ValueError at the first bad one."""
        return cls(tuple(parse_entry(item) for item in items))

    def allows(self, arbitration_id: int, *, extended: bool) -> bool:
        """True when ``arbitration_id`` in this format (29-bit when ``extended``) is allowed."""
        if extended:
            return _inside(self.extended, self._starts[1], arbitration_id)
        return _inside(self.standard, self._starts[0], arbitration_id)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def __str__(self) -> str:
        """``11-bit 0x200-0x20F, 0x210; 29-bit none``, or ``nothing``."""
        if not self.entries:
            return "nothing"
        return (
            f"11-bit {_format_spans(self.standard, False)}; "
            f"29-bit {_format_spans(self.extended, True)}"
        )


AllowEntryField = Annotated[AllowEntry, PlainValidator(parse_entry)]


def _tx_allow_schema(source: Any, handler: Any) -> core_schema.CoreSchema:
    # validate as a list of entries (so an error names its index), then build the lookup
    return core_schema.no_info_after_validator_function(
        lambda entries: TxAllowList(tuple(entries)),
        handler.generate_schema(list[AllowEntryField]),
        serialization=core_schema.plain_serializer_function_ser_schema(
            lambda allow: [entry.text for entry in allow.entries]
        ),
    )


#: a pydantic field holding a ``tx_allow``-style list (``tx_allow``, a helm's ``ids``)
TxAllowField = Annotated[TxAllowList, GetPydanticSchema(_tx_allow_schema)]
