"""Waiting for a condition: poll it until it holds, or fail naming it after a deadline.

For what no event or message tells; where one does, wait on that instead.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

#: how often a condition is looked at
INTERVAL = 0.02


def until(check: Callable[[], T], timeout: float = 10.0, what: str = "the condition") -> T:
    """Call ``check`` until it returns something truthy, and return that; raise
    AssertionError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not (got := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(INTERVAL)
    return got


async def eventually(
    check: Callable[[], T | Awaitable[T]], timeout: float = 10.0, what: str = "the condition"
) -> T:
    """``until`` on the running loop: ``check`` may be a plain or an async function."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if inspect.isawaitable(got):
            got = await got
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        await asyncio.sleep(INTERVAL)
