"""Fixtures for the reliability suite: a daemon served on its own thread.

A node runs in this process (so a python-can virtual bus in the test can see what it
puts on the wire) but on its own event loop thread, so the tests talk to it with plain
blocking ZeroMQ sockets, as a hostile peer would, and hypothesis drives them synchronously."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rovbus.config import load_system
from tests.helpers.systemfile import node_toml
from tests.reliability.threads import (
    NodeThread,
    signed_extra,
)


@pytest.fixture
def node_thread(write_system, tmp_path: Path) -> Iterator[Callable[..., NodeThread]]:  # type: ignore[no-untyped-def]
    """Start a node on its own thread: ``node_thread(name, signed=, system_keys=, **node)``."""
    started: list[NodeThread] = []

    def start(
        name: str = "alpha", *, signed: bool = False, system_keys: str = "", **node: Any
    ) -> NodeThread:
        extra = signed_extra(tmp_path) if signed else ""
        path = write_system(node_toml(name, **node), extra=extra)
        if system_keys:  # more keys of [system], the file's first table
            text = path.read_text().replace(
                "[groups.vehicle]", f"{system_keys}\n\n[groups.vehicle]", 1
            )
            path.write_text(text)
        thread = NodeThread(load_system(path), name)
        started.append(thread)
        return thread

    yield start
    for thread in started:
        thread.join()
