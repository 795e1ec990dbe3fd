"""Fixtures for every test: system files on fresh ports, a numbering publisher, and the
check that no test leaves a ZeroMQ socket open. Helpers live in tests/helpers."""

from __future__ import annotations

import signal
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers.leaks import no_new_sockets
from tests.helpers.numbered import NumberedSender
from tests.helpers.systemfile import system_toml

# A shell starts background jobs (`.ci/run &`, nohup) with SIGINT ignored, and every process
# started from them inherits that: the tests that press Ctrl-C on a command would wait for
# it forever. Take the default back; the commands this suite starts inherit it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def no_leaked_sockets() -> Iterator[None]:
    """Fail every test that leaves a ZeroMQ socket open."""
    with no_new_sockets():
        yield


@pytest.fixture
def write_system(tmp_path: Path) -> Callable[..., Path]:
    """Write a system file built from ``node_toml`` tables; returns its path."""

    def write(*nodes: str, interval: float = 0.2, extra: str = "") -> Path:
        path = tmp_path / f"system-{uuid.uuid4().hex[:6]}.toml"
        path.write_text(system_toml(*nodes, interval=interval, extra=extra))
        return path

    return write


@pytest.fixture
def sender() -> Iterator[NumberedSender]:
    """A publisher that numbers its messages per topic by hand (tests/helpers/numbered.py)."""
    s = NumberedSender()
    yield s
    s.close()
