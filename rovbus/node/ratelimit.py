"""Rate-limited log lines for events a peer can cause at will (bad envelopes, bad signatures).

The first event of a kind is logged at once; later ones at most once per ``period``
seconds, with the number suppressed in between. Counters, not this, are the record.
"""

from __future__ import annotations

import logging
import time


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, period: float = 10.0) -> None:
        self.logger = logger
        self.period = period
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, text: str) -> None:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.period:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        self._last[key] = now
        suppressed = self._suppressed.pop(key, 0)
        more = f" ({suppressed} more since last report)" if suppressed else ""
        self.logger.warning("%s%s", text, more)
