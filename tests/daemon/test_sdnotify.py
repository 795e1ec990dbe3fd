"""SystemdNotifier against a real AF_UNIX datagram socket playing systemd's part."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rovbus.daemon.sdnotify import SystemdNotifier, watchdog_interval


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[socket.socket]:
    """A datagram socket bound on a filesystem path, as systemd's notify socket is."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(2.0)
    yield sock
    sock.close()


@pytest.fixture
def notifier(systemd: socket.socket, monkeypatch: pytest.MonkeyPatch) -> Iterator[SystemdNotifier]:
    monkeypatch.setenv("NOTIFY_SOCKET", systemd.getsockname())
    made = SystemdNotifier.from_env()
    assert made is not None
    yield made
    made.close()


def receive(sock: socket.socket) -> bytes:
    return sock.recv(4096)


def test_from_env_is_none_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert SystemdNotifier.from_env() is None
    monkeypatch.setenv("NOTIFY_SOCKET", "")
    assert SystemdNotifier.from_env() is None


@pytest.mark.parametrize("value", ["relative/notify", "vsock:2:1234", "@"])
def test_from_env_rejects_unusable_addresses(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", value)
    with pytest.raises(ValueError, match="NOTIFY_SOCKET"):
        SystemdNotifier.from_env()


def test_ready_with_status(notifier: SystemdNotifier, systemd: socket.socket) -> None:
    notifier.ready("2 buses up")
    assert receive(systemd) == b"READY=1\nSTATUS=2 buses up"
    assert notifier.sent == 1
    assert notifier.failures == 0


def test_ready_without_status(notifier: SystemdNotifier, systemd: socket.socket) -> None:
    notifier.ready()
    assert receive(systemd) == b"READY=1"


def test_watchdog_status_stopping(notifier: SystemdNotifier, systemd: socket.socket) -> None:
    notifier.watchdog()
    notifier.status("can0 bus-off")
    notifier.stopping()
    notifier.stopping("draining")
    assert receive(systemd) == b"WATCHDOG=1"
    assert receive(systemd) == b"STATUS=can0 bus-off"
    assert receive(systemd) == b"STOPPING=1"
    assert receive(systemd) == b"STOPPING=1\nSTATUS=draining"
    assert notifier.sent == 4


def test_status_newlines_cannot_inject_assignments(
    notifier: SystemdNotifier, systemd: socket.socket
) -> None:
    notifier.status("line one\nREADY=1")
    assert receive(systemd) == b"STATUS=line one READY=1"


def test_notify_sends_lines_as_one_datagram(
    notifier: SystemdNotifier, systemd: socket.socket
) -> None:
    notifier.notify("RELOADING=1", "MONOTONIC_USEC=42")
    notifier.extend_timeout(2.5)
    assert receive(systemd) == b"RELOADING=1\nMONOTONIC_USEC=42"
    assert receive(systemd) == b"EXTEND_TIMEOUT_USEC=2500000"


def test_status_is_utf8(notifier: SystemdNotifier, systemd: socket.socket) -> None:
    notifier.status("depth 12.5 m, heading 270°")
    assert receive(systemd) == "STATUS=depth 12.5 m, heading 270°".encode()


def test_abstract_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"rovbus-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind("\0" + name)
        systemd.settimeout(2.0)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        notifier = SystemdNotifier.from_env()
        assert notifier is not None
        with notifier:
            notifier.ready("up")
            notifier.watchdog()
        assert notifier.closed
        assert receive(systemd) == b"READY=1\nSTATUS=up"
        assert receive(systemd) == b"WATCHDOG=1"


def test_vanished_socket_counts_a_failure(
    notifier: SystemdNotifier, systemd: socket.socket
) -> None:
    path = systemd.getsockname()
    systemd.close()
    os.unlink(path)
    notifier.watchdog()  # must not raise
    notifier.ready("x")
    assert notifier.failures == 2
    assert notifier.sent == 0
    assert isinstance(notifier.last_error, OSError)


def test_closed_receiver_counts_a_failure(tmp_path: Path) -> None:
    """A path that exists but that no one listens on: ECONNREFUSED, counted."""
    path = tmp_path / "stale"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as gone:
        gone.bind(str(path))
    with SystemdNotifier(str(path)) as notifier:
        notifier.stopping()
        assert notifier.failures == 1


def test_full_receiver_does_not_block(tmp_path: Path) -> None:
    """The socket is non-blocking: a receiver that never reads costs failures, not a stall."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as systemd:
        systemd.bind(str(tmp_path / "notify"))
        with SystemdNotifier(str(tmp_path / "notify")) as notifier:
            for _ in range(10_000):
                notifier.status("x" * 1000)
                if notifier.failures:
                    break
            assert notifier.failures == 1
            assert notifier.sent > 0


def test_notify_after_close_counts_a_failure(
    notifier: SystemdNotifier, systemd: socket.socket
) -> None:
    notifier.close()
    notifier.close()  # idempotent
    notifier.watchdog()
    assert notifier.failures == 1
    assert "closed" in repr(notifier)


def test_notify_with_bad_argument_does_not_raise(notifier: SystemdNotifier) -> None:
    notifier.notify(42)  # type: ignore[arg-type]
    assert notifier.failures == 1
    assert isinstance(notifier.last_error, TypeError)


@pytest.mark.parametrize(
    ("usec", "pid", "expected"),
    [
        ("5000000", None, 2.5),
        ("5000000", "self", 2.5),
        ("5000000", "other", None),
        ("1000000", "", 0.5),
        (None, None, None),
        ("", None, None),
        ("0", None, None),
        ("-5", None, None),
        ("five", None, None),
        ("5000000", "nonsense", None),
    ],
)
def test_watchdog_interval(
    usec: str | None,
    pid: str | None,
    expected: float | None,
    notifier: SystemdNotifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if usec is None:
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    else:
        monkeypatch.setenv("WATCHDOG_USEC", usec)
    if pid is None:
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
    else:
        pid_value = {"self": str(os.getpid()), "other": str(os.getpid() + 1)}.get(pid, pid)
        monkeypatch.setenv("WATCHDOG_PID", pid_value)
    assert notifier.watchdog_interval() == expected
    assert watchdog_interval() == expected


def test_watchdog_interval_from_a_given_environment() -> None:
    env = {"WATCHDOG_USEC": "3000000", "WATCHDOG_PID": str(os.getpid())}
    assert watchdog_interval(env) == 1.5
    notifier = SystemdNotifier.from_env({"NOTIFY_SOCKET": "/nonexistent/notify", **env})
    assert notifier is not None
    with notifier:
        assert notifier.watchdog_interval() == 1.5
        notifier.watchdog()
        assert notifier.failures == 1
