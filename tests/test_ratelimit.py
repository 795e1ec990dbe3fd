"""Rate-limited log lines (rovbus/ratelimit.py): the first goes out, the next within the
interval is held back, and the line after says how many were."""

from __future__ import annotations

import logging

import pytest

from rovbus.ratelimit import RateLimiter


def test_a_line_after_held_back_ones_says_how_many(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [100.0]
    monkeypatch.setattr("rovbus.ratelimit.time.monotonic", lambda: now[0])
    limiter = RateLimiter(10.0)
    logger = logging.getLogger("rovbus.test.ratelimit")
    with caplog.at_level(logging.INFO, logger=logger.name):
        limiter.log(logger, logging.WARNING, "k", "%s: dropped %s", "pub", "a message")
        limiter.log(logger, logging.WARNING, "k", "%s: dropped %s", "pub", "a message")
        limiter.log(logger, logging.WARNING, "k", "%s: dropped %s", "pub", "a message")
        limiter.log(logger, logging.WARNING, "other", "%s: other", "pub")
        now[0] += 10.0
        limiter.log(logger, logging.WARNING, "k", "%s: dropped %s", "pub", "a message")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "pub: dropped a message"),
        (logging.WARNING, "pub: other"),
        (logging.WARNING, "pub: dropped a message (2 more since the last report)"),
    ]
