"""The demo DBC (``config/demo.dbc``): what the simulated devices encode with.

Devices look messages up by name, not by ID: every thruster encodes with the layout of
``ThrusterStatus0`` and sends it under the ID its configuration gives, so a system file may
move a device's IDs without a new DBC (``rovbus sub --dbc`` then decodes only the default
IDs). The live view decodes with the same file, so encoding and decoding agree.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cantools
from cantools.database.can import Database, Message
from cantools.database.errors import UnsupportedDatabaseFormatError

from rovbus.errors import ConfigError

__all__ = ["DEMO_DBC", "MessageCodec", "demo_database", "load_database"]

#: the DBC shipped with the repository, beside ``config/demo.toml``
DEMO_DBC = Path(__file__).resolve().parents[2] / "config" / "demo.dbc"


@functools.cache
def load_database(path: Path) -> Database:
    """The DBC at ``path`` (cached); ConfigError naming the file if it cannot be read."""
    try:
        db = cantools.database.load_file(str(path), strict=True)
    except (OSError, UnsupportedDatabaseFormatError) as exc:
        raise ConfigError(str(path), [f"cannot load the DBC {path}: {exc}"]) from None
    if not isinstance(db, Database):
        raise ConfigError(str(path), [f"{path} is not a CAN database"])
    return db


def demo_database() -> Database:
    """The demo DBC, ``config/demo.dbc``."""
    return load_database(DEMO_DBC)


class MessageCodec:
    """Encode one DBC message's signals to bytes (values are clamped to the signal range,
    so a simulation that overshoots sends the limit rather than failing)."""

    __slots__ = ("_limits", "message")

    def __init__(self, db: Database, name: str) -> None:
        try:
            self.message: Message = db.get_message_by_name(name)
        except KeyError:
            raise ConfigError("demo.dbc", [f"the DBC has no message {name!r}"]) from None
        self._limits: dict[str, tuple[float | None, float | None]] = {
            s.name: (s.minimum, s.maximum) for s in self.message.signals
        }

    def encode(self, values: Mapping[str, float]) -> bytes:
        clamped: dict[str, Any] = {}
        for name, value in values.items():
            low, high = self._limits[name]
            if low is not None and value < low:
                value = low
            if high is not None and value > high:
                value = high
            clamped[name] = value
        data: bytes = self.message.encode(clamped, scaling=True, padding=True, strict=False)
        return data

    def decode(self, data: bytes) -> dict[str, Any]:
        decoded = self.message.decode(data, decode_choices=False)
        return dict(decoded) if isinstance(decoded, Mapping) else {}
