"""The CAN log ``rovbus record`` writes: python-can's writer for the file's suffix on a
:class:`~rovbus.client.logfile.LogFile`, so every record reaches the disk whole.

``sync()`` puts every frame taken so far on disk: it closes the BLF writer's open
container (python-can fills 128 KB containers and writes one only when it is full, so a
killed recording of a quiet bus held nothing), hands the text writers' buffered lines to
the file, and syncs the file. A ``.db`` (python-can's SQLite writer) writes from a thread
of its own, which commits at least every ``interval``. With ``max_bytes`` the log rotates
as python-can's ``SizedRotatingLogger`` does (its naming and its formats).

Imported by ``record`` only when it runs: python-can is a heavy import.
"""

from __future__ import annotations

import io
from pathlib import Path

import can
from can.io.generic import (
    BinaryIOMessageWriter,
    MessageWriter,
    SizedMessageWriter,
    TextIOMessageWriter,
)
from can.typechecking import StringPathLike

from rovbus.client.logfile import LogFile

__all__ = ["CanLog"]


class CanLog:
    """Frames to ``path`` in the format its suffix names (python-can's writers)."""

    def __init__(self, path: Path, *, max_bytes: int | None, interval: float) -> None:
        self.interval = interval
        #: the file of the writer in use (None for .db, which writes its own)
        self.file: LogFile | None = None
        self._writer: MessageWriter | None = None
        self._listener: can.Listener
        if max_bytes:
            self._listener = _Rotating(self, path, max_bytes)
        else:
            self._listener = self._writer = self.open(path)

    def open(self, path: StringPathLike) -> MessageWriter:
        """A writer for ``path``, on a new LogFile (also called at each rotation)."""
        writer_type = can.io.MESSAGE_WRITERS[Path(path).suffix.lower()]
        if issubclass(writer_type, can.SqliteWriter):
            self.file = None
            db = can.SqliteWriter(str(path))
            db.MAX_TIME_BETWEEN_WRITES = self.interval
            return db
        self.file = LogFile(path)
        if issubclass(writer_type, BinaryIOMessageWriter):
            return writer_type(self.file)
        assert issubclass(writer_type, TextIOMessageWriter)  # record takes no other suffix
        return writer_type(io.TextIOWrapper(self.file, encoding="utf-8"))

    @property
    def writer(self) -> MessageWriter:
        if isinstance(self._listener, _Rotating):
            return self._listener.writer
        assert self._writer is not None
        return self._writer

    def write(self, message: can.Message) -> None:
        """One frame; past a megabyte in memory, what was written goes to the system."""
        self._listener.on_message_received(message)
        if self.file is not None and self.file.full:
            self._hand_over(containers=False)
            self.file.push()

    def sync(self) -> None:
        """Every frame written so far on disk, in whole records."""
        if self.file is not None:
            self._hand_over(containers=True)
            self.file.sync()

    def close(self) -> None:
        """Close the file as python-can does (the BLF header written), synced."""
        self._listener.stop()

    def _hand_over(self, *, containers: bool) -> None:
        """Move what the writer holds into its file: whole lines, and with ``containers``
        the BLF objects not yet in a container, as one (python-can has no public call
        for it; ``stop()`` does the same)."""
        writer = self.writer
        if containers and isinstance(writer, can.BLFWriter):
            writer._flush()
        text = getattr(writer, "file", None)
        if isinstance(text, io.TextIOWrapper):
            text.flush()


class _Rotating(can.SizedRotatingLogger):
    """python-can's size rotation, with the log's writers."""

    def __init__(self, log: CanLog, path: Path, max_bytes: int) -> None:
        self._log = log
        super().__init__(str(path), max_bytes=max_bytes)

    def _get_new_writer(self, filename: StringPathLike) -> SizedMessageWriter:
        writer = self._log.open(filename)
        assert isinstance(writer, SizedMessageWriter)
        return writer
