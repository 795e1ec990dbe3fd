"""What a test left open: ZeroMQ sockets (the root conftest fails a test that leaks one)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import zmq


def open_sockets() -> list[zmq.Socket[Any]]:
    """Every ZeroMQ socket of this process not yet closed (after a collection)."""
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, zmq.Socket) and not o.closed]


@contextmanager
def no_new_sockets() -> Iterator[None]:
    """Raise AssertionError if the block leaves ZeroMQ sockets open (closing them)."""
    before = {id(s) for s in open_sockets()}
    yield
    leaked = [s for s in open_sockets() if id(s) not in before]
    for s in leaked:
        s.close(linger=0)
    assert not leaked, f"{len(leaked)} zmq socket(s) left open: {leaked}"
