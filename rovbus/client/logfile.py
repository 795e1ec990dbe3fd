"""A file for recordings that reaches the disk in whole records.

A buffered file hands its bytes to the operating system whenever its buffer fills, in the
middle of a record as often as not; a recorder killed then leaves a file that ends in
half a line or half a BLF object, which python-can's readers refuse. A ``LogFile`` keeps
what is written in memory until ``push()``, which hands all of it to the system in one
write, and ``sync()``, which pushes and fsyncs. The recorder calls them between records:
a kill -9 leaves the file ending where a record ends, and a power cut loses only what came
after the last ``sync()``. Past ``FULL`` bytes (``full``) the writer pushes at its next
record's end, so memory stays bounded between syncs.

It is a binary file object (``io.BufferedIOBase``): python-can's writers take it as it is
(BLF) or wrapped in an ``io.TextIOWrapper`` (candump, ASC, CSV, TRC). ``flush()`` keeps the
bytes in memory, so a writer that flushes mid-record cannot cut one; ``seek()`` pushes
first, and ``close()`` syncs.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = ["LogFile"]


class LogFile(io.BufferedIOBase):
    """A new file (truncated if it exists), written only by ``push``, ``sync`` and ``close``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.name = str(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        self._pending = bytearray()
        self._position = 0  # of the file descriptor: where the pending bytes go
        self._unsynced = False  # pushed since the last fsync
        self._named = False  # the new name in its directory is on disk

    #: pending bytes past which ``full`` says to push at the next record boundary
    FULL = 1 << 20

    @property
    def pending(self) -> int:
        """Bytes written but not yet handed to the operating system."""
        return len(self._pending)

    @property
    def full(self) -> bool:
        """``FULL`` bytes or more pending: time to push, at the end of a record."""
        return len(self._pending) >= self.FULL

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def write(self, data: ReadableBuffer, /) -> int:
        if self.closed:
            raise ValueError("write to a closed file")
        with memoryview(data) as view:
            self._pending += view
            return view.nbytes

    def tell(self) -> int:
        return self._position + len(self._pending)

    def seek(self, offset: int, whence: int = os.SEEK_SET, /) -> int:
        self.push()
        self._position = os.lseek(self._fd, offset, whence)
        return self._position

    def push(self) -> None:
        """Hand every pending byte to the operating system (a kill no longer loses them)."""
        done = 0
        try:
            with memoryview(self._pending) as view:
                while done < len(view):
                    done += os.write(self._fd, view[done:])
        finally:
            del self._pending[:done]
            self._position += done
            self._unsynced = self._unsynced or done > 0

    def sync(self) -> None:
        """Push, then fsync the file (a power cut no longer loses what was written)."""
        self.push()
        if self._unsynced:
            _fsync(self._fd)
            self._unsynced = False
        if not self._named:
            fd = os.open(Path(self.name).parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                _fsync(fd)  # the new file's name: fsync of the file alone does not keep it
            finally:
                os.close(fd)
            self._named = True

    def close(self) -> None:
        if self.closed:
            return
        try:
            self.sync()
        finally:
            os.close(self._fd)
            super().close()


def _fsync(fd: int) -> None:
    """fsync, where there is a disk behind ``fd`` (a named pipe, /dev/null: EINVAL)."""
    try:
        os.fsync(fd)
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
