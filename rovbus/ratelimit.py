"""Rate limiting for log lines about events a peer or a device can repeat at will.

Counters are the record of such events; the log only says that they are happening. The
first event of a kind is let through at once, later ones at most once per interval, and
the caller is told how many it held back in between (``allow``), or the line says it
(``log``).
"""

from __future__ import annotations

import logging
import time


class RateLimiter:
    """Decides, per key, whether a log line may go out now."""

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """None: stay quiet; else the number of lines held back since the last one."""
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self._interval_s:
            self._held[key] = self._held.get(key, 0) + 1
            return None
        self._last[key] = now
        return self._held.pop(key, 0)

    def log(
        self,
        logger: logging.Logger,
        level: int,
        key: str,
        msg: str,
        *args: object,
        exc_info: bool = False,
    ) -> None:
        """Log ``msg % args`` at ``level`` unless ``allow(key)`` says to stay quiet; a line
        after some were held back ends with `` (N more since the last report)``."""
        held = self.allow(key)
        if held is None:
            return
        if held:
            msg += " (%d more since the last report)"
            args = (*args, held)
        logger.log(level, msg, *args, exc_info=exc_info)
