"""``with`` and ``async with`` for the objects that end with ``close`` or ``aclose``.

``Closing``: ``with x:`` gives ``x`` and calls ``x.close()`` at the end, however the block
ends. ``AsyncClosing``: the same with ``async with`` and ``await x.aclose()``. Neither
suppresses an exception of the block. A subclass defines ``close`` (``aclose``); the type
checker holds it to that through the ``self`` types below.
"""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self

__all__ = ["AsyncClosing", "Closing"]


class _Closes(Protocol):
    def close(self) -> None: ...


class _AsyncCloses(Protocol):
    async def aclose(self) -> None: ...


class Closing:
    """A base for classes whose ``close()`` ends them: ``with`` closes."""

    __slots__ = ()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self: _Closes,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClosing:
    """A base for classes whose ``aclose()`` ends them: ``async with`` closes."""

    __slots__ = ()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self: _AsyncCloses,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
