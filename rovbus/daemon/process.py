"""Running a daemon as a process: logging, signals, the event loop, systemd.

``run_daemon`` is what ``rovbus node`` and ``rovbus forwarder`` call. Exit codes:
0 after a clean stop, 2 when start-up fails (bad config, port in use, a bus that cannot
open, bad key file), before ``READY=1`` is sent, with a message naming the cause.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar, Protocol

from rovbus.daemon.sdnotify import SystemdNotifier
from rovbus.errors import RovbusError
from rovbus.exitcodes import EXIT_OK, EXIT_USAGE

log = logging.getLogger("rovbus")


class Daemon(Protocol):
    name: str

    async def start(self) -> None: ...
    async def serve(self) -> None: ...
    async def aclose(self) -> None: ...
    def request_stop(self) -> None: ...
    def status_line(self) -> str: ...


class _JournalFormatter(logging.Formatter):
    """``<N>`` syslog priority prefixes, which journald turns into levels."""

    PRIORITY: ClassVar[dict[str, int]] = {
        "CRITICAL": 2,
        "ERROR": 3,
        "WARNING": 4,
        "INFO": 6,
        "DEBUG": 7,
    }

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.PRIORITY.get(record.levelname, 6)}>{super().format(record)}"


def setup_logging(level: str) -> None:
    """Logs to stderr; with journald (``JOURNAL_STREAM`` set) in its priority form."""
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(_JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _watchdog(notifier: SystemdNotifier, daemon: Daemon, interval: float) -> None:
    while True:
        notifier.watchdog()
        notifier.status(daemon.status_line())
        await asyncio.sleep(interval)


async def _run(daemon: Daemon) -> int:
    notifier = SystemdNotifier.from_env()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, daemon.request_stop)
    try:
        await daemon.start()
    except RovbusError as exc:
        log.error("%s cannot start: %s", daemon.name, exc)
        return EXIT_USAGE
    log.info("%s", daemon.status_line())
    watchdog: asyncio.Task[None] | None = None
    if notifier is not None:
        notifier.ready(daemon.status_line())
        interval = notifier.watchdog_interval()
        if interval:
            watchdog = asyncio.create_task(_watchdog(notifier, daemon, interval))
    try:
        await daemon.serve()
    finally:
        log.info("%s stopping", daemon.name)
        if notifier is not None:
            notifier.stopping()
        if watchdog is not None:
            watchdog.cancel()
        await daemon.aclose()
        if notifier is not None:
            notifier.close()
    return EXIT_OK


def run_daemon(make: Callable[[], Daemon]) -> int:
    """Build the daemon (``RovbusError`` -> exit 2) and run it on uvloop where available."""
    try:
        daemon = make()
    except RovbusError as exc:
        print(f"rovbus: {exc}", file=sys.stderr)
        return EXIT_USAGE
    main: Coroutine[Any, Any, int] = _run(daemon)
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(main)
