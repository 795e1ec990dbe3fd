"""Which CAN arbitration IDs a node may transmit.

A bus's ``tx_allow`` lists IDs and inclusive ranges, as strings in hex or decimal
(``"0x200-0x20F"``, ``"0x300"``, ``"768"``) or as TOML integers (``0x300``). They parse
into a :class:`TxAllowList`: sorted, merged ``(lo, hi)`` ranges and a bisect lookup, so the
check on every transmitted frame costs one binary search. An empty list allows nothing.

IDs live in the 29-bit space (0 to 0x1FFFFFFF); an 11-bit ID is the same number.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

__all__ = ["MAX_EXTENDED_ID", "MAX_STANDARD_ID", "TxAllowList", "parse_id", "parse_id_range"]

#: the largest 11-bit (standard) arbitration ID
MAX_STANDARD_ID = 0x7FF
#: the largest 29-bit (extended) arbitration ID
MAX_EXTENDED_ID = 0x1FFFFFFF


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


def parse_id_range(item: str | int) -> tuple[int, int]:
    """Parse ``"LO-HI"``, ``"ID"`` or an integer into an inclusive ``(lo, hi)`` range.

    Raises ValueError naming the problem: not a number, out of the 29-bit range, or a
    range whose start is above its end.
    """
    if isinstance(item, bool) or not isinstance(item, int | str):
        raise TypeError(f"expected an ID string or integer, got {type(item).__name__}")
    if isinstance(item, int):
        if not 0 <= item <= MAX_EXTENDED_ID:
            raise ValueError(f"{item:#x} is out of the 29-bit ID range 0x0-0x1FFFFFFF")
        return (item, item)
    lo_text, sep, hi_text = item.partition("-")
    if not sep:
        value = parse_id(item)
        return (value, value)
    lo, hi = parse_id(lo_text), parse_id(hi_text)
    if lo > hi:
        raise ValueError(f'range "{item}" starts above its end (0x{lo:X} > 0x{hi:X})')
    return (lo, hi)


def _merge(ranges: Iterable[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return tuple(merged)


@dataclass(frozen=True, slots=True)
class TxAllowList:
    """Sorted, non-overlapping inclusive ID ranges with an O(log n) membership test."""

    ranges: tuple[tuple[int, int], ...] = ()
    _starts: tuple[int, ...] = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        merged = _merge(self.ranges)
        for lo, hi in merged:
            if not 0 <= lo <= hi <= MAX_EXTENDED_ID:
                raise ValueError(f"invalid ID range ({lo:#x}, {hi:#x})")
        object.__setattr__(self, "ranges", merged)
        object.__setattr__(self, "_starts", tuple(lo for lo, _ in merged))

    @classmethod
    def parse(cls, items: Iterable[str | int]) -> TxAllowList:
        """Build from system-file items; raise ValueError at the first bad one."""
        return cls(tuple(parse_id_range(item) for item in items))

    def allows(self, arbitration_id: int) -> bool:
        """True when ``arbitration_id`` lies in one of the ranges."""
        index = bisect_right(self._starts, arbitration_id) - 1
        return index >= 0 and arbitration_id <= self.ranges[index][1]

    def __contains__(self, arbitration_id: object) -> bool:
        return isinstance(arbitration_id, int) and self.allows(arbitration_id)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.ranges)

    def __len__(self) -> int:
        return len(self.ranges)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def __str__(self) -> str:
        if not self.ranges:
            return "nothing"
        return ", ".join(
            f"0x{lo:X}" if lo == hi else f"0x{lo:X}-0x{hi:X}" for lo, hi in self.ranges
        )
