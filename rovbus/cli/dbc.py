"""Decoding CAN frames into signals with a DBC file (cantools), for ``sub`` and ``dump``.

A frame is looked up by its exact ID first. With PGN matching, 29-bit frames are also
looked up by ``id & 0x1FFFF00`` (data page, PDU format and specific: the PGN, without
priority and source address), as NMEA 2000 and J1939 DBCs need: their messages carry one
placeholder source address. PGN matching is on with ``--dbc-pgn``, and by itself for a DBC
whose messages are all 29-bit with the placeholder source 0xFE or 0xFF (canboat's NMEA 2000
export is one). Fast-packet messages decode one fragment at a time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rovbus.errors import ConfigError
from rovbus.wire.canframe import CanFrame

__all__ = ["PGN_MASK", "DbcDecoder"]

PGN_MASK = 0x1FFFF00


class DbcDecoder:
    def __init__(self, path: str | Path, *, pgn: bool | None = None) -> None:
        import cantools

        try:
            loaded: Any = cantools.database.load_file(str(path), strict=False)
        except Exception as exc:  # OSError, or cantools's own parse errors
            raise ConfigError(str(path), [f"cannot load DBC: {exc}"]) from None
        if not hasattr(loaded, "messages"):
            raise ConfigError(str(path), ["not a CAN database (DBC, KCD, SYM, ARXML)"])
        self.db = loaded
        messages = list(self.db.messages)
        self.exact: dict[tuple[int, bool], Any] = {
            (m.frame_id, bool(m.is_extended_frame)): m for m in messages
        }
        if pgn is None:
            pgn = bool(messages) and all(
                m.is_extended_frame and (m.frame_id & 0xFF) in (0xFE, 0xFF) for m in messages
            )
        self.pgn = pgn
        self.by_pgn: dict[int, Any] = {}
        if pgn:
            for m in messages:
                if m.is_extended_frame:
                    self.by_pgn.setdefault(m.frame_id & PGN_MASK, m)

    def lookup(self, frame: CanFrame) -> Any:
        m = self.exact.get((frame.arbitration_id, frame.is_extended_id))
        if m is None and self.pgn and frame.is_extended_id:
            m = self.by_pgn.get(frame.arbitration_id & PGN_MASK)
        return m

    def decode(self, frame: CanFrame) -> tuple[str, dict[str, Any]] | None:
        """``(message name, {signal: value})`` or None when the DBC has no such message
        (or the frame does not decode)."""
        if frame.is_remote_frame or frame.is_error_frame:
            return None
        m = self.lookup(frame)
        if m is None:
            return None
        try:
            values = m.decode(frame.data, allow_truncated=True, decode_choices=True)
        except Exception:  # cantools raises assorted errors for short or odd data
            return None
        signals = {
            k: v if isinstance(v, int | float) and not isinstance(v, bool) else str(v)
            for k, v in values.items()
        }
        return str(m.name), signals
