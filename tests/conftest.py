"""Shared fixtures: free loopback ports, small system files, and leak checks."""

from __future__ import annotations

import gc
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from tests.numbered import NumberedSender
from tools.loopback import free_ports

REPO = Path(__file__).resolve().parent.parent

# A shell starts background jobs (`.ci/run &`, nohup) with SIGINT ignored, and every process
# started from them inherits that: the tests that press Ctrl-C on a command would wait for
# it forever. Take the default back; the commands this suite starts inherit it.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)
SHARED_CAN = REPO.parent / "shared" / "data" / "can"


def node_toml(
    name: str,
    group: str = "vehicle",
    buses: tuple[str, ...] = ("can0",),
    *,
    tx_allow: str | None = '["0x100-0x7FF", "0x18FF0000-0x18FFFFFF"]',
    batch: str | None = None,
    iopub: bool = True,
    host: str | None = None,
    bind: str = "127.0.0.1",
    tx_log: int | None = None,
) -> str:
    """One ``[nodes.NAME]`` table on fresh ports, buses on unique virtual channels
    (``tx_allow`` None: the key left out); ``host``: its ``host`` key, ``bind``: the host
    part of every endpoint (an address, an interface, ``*`` or ``0.0.0.0``); ``tx_log``:
    the frames its transmit log keeps (None: the default)."""
    ports = free_ports(6)
    tag = uuid.uuid4().hex[:8]
    lines = [f"[nodes.{name}]", f'group = "{group}"']
    if host is not None:
        lines.append(f'host = "{host}"')
    if tx_log is not None:
        lines.append(f"tx_log = {tx_log}")
    lines += [
        f"[nodes.{name}.endpoints]",
        f'pub = "tcp://{bind}:{ports[0]}"',
        f'shell = "tcp://{bind}:{ports[1]}"',
        f'control = "tcp://{bind}:{ports[2]}"',
        f'stdin = "tcp://{bind}:{ports[3]}"',
        f'hb = "tcp://{bind}:{ports[4]}"',
    ]
    if iopub:
        lines.append(f'iopub = "tcp://{bind}:{ports[5]}"')
    for bus in buses:
        lines += [
            f"[[nodes.{name}.buses]]",
            f'name = "{bus}"',
            'interface = "virtual"',
            f'channel = "test-{tag}-{name}-{bus}"',
        ]
        if tx_allow is not None:
            lines.append(f"tx_allow = {tx_allow}")
        if batch:
            lines.append(f"batch = {batch}")
    return "\n".join(lines) + "\n"


def system_toml(*nodes: str, interval: float = 0.2, extra: str = "") -> str:
    return (
        f'[system]\nname = "test"\nheartbeat_interval = {interval}\n\n'
        "[groups.vehicle]\n[groups.topside]\n\n" + extra + "\n".join(nodes)
    )


@pytest.fixture
def write_system(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a system file built from ``node_toml`` tables; returns its path."""

    def write(*nodes: str, interval: float = 0.2, extra: str = "") -> Path:
        path = tmp_path / f"system-{uuid.uuid4().hex[:6]}.toml"
        path.write_text(system_toml(*nodes, interval=interval, extra=extra))
        return path

    return write


def _open_sockets() -> list[zmq.Socket]:  # type: ignore[type-arg]
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, zmq.Socket) and not o.closed]


@pytest.fixture
def sender() -> Iterator[NumberedSender]:
    """A publisher that numbers its messages per topic by hand (tests/numbered.py)."""
    s = NumberedSender()
    yield s
    s.close()


@pytest.fixture
def no_leaked_sockets() -> Iterator[None]:
    """Fail the test if it leaves a ZeroMQ socket open."""
    before = {id(s) for s in _open_sockets()}
    yield
    leaked = [s for s in _open_sockets() if id(s) not in before]
    for s in leaked:
        s.close(linger=0)
    assert not leaked, f"{len(leaked)} zmq socket(s) left open: {leaked}"


def forwarder_toml(
    name: str,
    inner: str = "vehicle",
    outer: str = "topside",
    *,
    host: str | None = None,
    bind: str = "127.0.0.1",
) -> str:
    """One ``[forwarders.NAME]`` table on fresh ports (``host``, ``bind`` as for
    ``node_toml``)."""
    ports = free_ports(3)
    on = f'host = "{host}"\n' if host is not None else ""
    return (
        f'[forwarders.{name}]\n{on}inner = "{inner}"\nouter = "{outer}"\n'
        f"[forwarders.{name}.endpoints]\n"
        f'pub = "tcp://{bind}:{ports[0]}"\n'
        f'request = "tcp://{bind}:{ports[1]}"\n'
        f'control = "tcp://{bind}:{ports[2]}"\n'
    )
