"""The native rovbus log (``.rbl``): every message's envelope frames with receive times.

A ``.rbl`` file keeps messages exactly as they crossed the wire (topic, delimiter,
signature, header, parent header, metadata, content, buffers), so a replay republishes the
same bytes and any tool that speaks the envelope can read it. Layout::

    magic     8 bytes: 89 52 42 4C 0D 0A 1A 0A  ("\\x89RBL\\r\\n\\x1a\\n", as PNG does:
              a file mangled by text-mode transfer is caught at once)
    header    one msgpack map: {"format": "rovbus-log", "version": 1,
              "created": <UTC epoch seconds>, "system": <system name or nil>,
              "prefixes": [<topic prefixes recorded>]}
    records   msgpack arrays, one per message, until the end of the file:
              [<receive time, UTC epoch seconds, float>, [<frame bytes>, ...]]

Frames are msgpack ``bin``; the signature in them is the original sender's, so a replay
is accepted only by subscribers with that key whose replay guard has not seen it. The
writer's file reaches the disk in whole records (:class:`~rovbus.client.logfile.LogFile`):
``sync()`` puts everything written so far on disk. A file cut short anyway (a power cut
mid-write) reads up to its last whole record.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import msgpack

from rovbus.client.logfile import LogFile
from rovbus.errors import NativeLogError

__all__ = ["MAGIC", "NativeLogWriter", "is_native_log", "read_native_log"]

MAGIC = b"\x89RBL\r\n\x1a\n"
VERSION = 1


def is_native_log(path: str | Path) -> bool:
    """True when ``path`` starts with the ``.rbl`` magic bytes."""
    try:
        with open(path, "rb") as f:
            return f.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


class NativeLogWriter:
    """Appends records to a new ``.rbl`` file; ``size`` is the bytes written so far."""

    def __init__(
        self, path: str | Path, *, system: str | None = None, prefixes: Sequence[str] = ()
    ) -> None:
        self.path = Path(path)
        self._file = LogFile(self.path)
        self._packer = msgpack.Packer(use_bin_type=True)
        header = {
            "format": "rovbus-log",
            "version": VERSION,
            "created": time.time(),
            "system": system,
            "prefixes": list(prefixes),
        }
        self.size = 0
        self._write(MAGIC + self._packer.pack(header))
        self.records = 0

    def _write(self, data: bytes) -> None:
        """One whole record (or the magic and header): past a megabyte held, to the system."""
        self._file.write(data)
        self.size += len(data)
        if self._file.full:
            self._file.push()

    def write(self, frames: Sequence[bytes], received: float) -> None:
        """Append one message: its multipart frames and receive time."""
        self._write(self._packer.pack([float(received), list(frames)]))
        self.records += 1

    def sync(self) -> None:
        """Every record written so far on disk (written and fsynced)."""
        self._file.sync()

    def close(self) -> None:
        if not self._file.closed:
            self._file.close()


def read_native_log(path: str | Path) -> tuple[dict[str, Any], Iterator[tuple[float, list[bytes]]]]:
    """The header and an iterator of ``(receive time, frames)`` of a ``.rbl`` file.

    Raises NativeLogError for a file that is not one (wrong magic or version)."""
    f = open(path, "rb")  # noqa: SIM115 - closed by the iterator
    try:
        if f.read(len(MAGIC)) != MAGIC:
            raise NativeLogError(f"{path}: not a rovbus native log (bad magic bytes)")
        unpacker = msgpack.Unpacker(f, raw=False, max_buffer_size=64 * 1024 * 1024)
        header = next(unpacker, None)
        if not isinstance(header, dict) or header.get("format") != "rovbus-log":
            raise NativeLogError(f"{path}: missing rovbus-log header")
        if header.get("version") != VERSION:
            raise NativeLogError(f"{path}: log version {header.get('version')!r}, expected 1")
    except BaseException:
        f.close()
        raise

    def records() -> Iterator[tuple[float, list[bytes]]]:
        with f:
            try:
                for record in unpacker:
                    if (
                        isinstance(record, list)
                        and len(record) == 2
                        and isinstance(record[0], int | float)
                        and isinstance(record[1], list)
                    ):
                        yield float(record[0]), [bytes(b) for b in record[1]]
            except (msgpack.OutOfData, ValueError):
                return  # a file cut short: stop at the last whole record

    return header, records()
