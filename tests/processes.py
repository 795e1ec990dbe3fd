"""Daemons as real processes: a fake systemd notify socket, start, READY=1, stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path


class FakeSystemd:
    """Plays systemd's side of sd_notify: a unix datagram socket the daemon writes to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.received: list[str] = []
        #: the daemon writing to it: a wait ends as soon as it has exited
        self.proc: subprocess.Popen[str] | None = None

    def wait_for(self, field: str, timeout: float = 15.0) -> str:
        """The first datagram holding ``field`` (e.g. ``READY=1``)."""
        for text in self.received:
            if field in text.splitlines():
                return text
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(min(left, 0.1))
            try:
                text = self.sock.recv(4096).decode()
            except TimeoutError:
                if self.proc is not None and self.proc.poll() is not None:
                    _, err = self.proc.communicate(timeout=10)
                    raise AssertionError(
                        f"the daemon exited {self.proc.returncode} before {field}:\n{err}"
                    ) from None
                continue
            self.received.append(text)
            if field in text.splitlines():
                return text
        raise AssertionError(f"no {field} from the daemon; got {self.received}")

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


@contextmanager
def daemon_process(
    command: str,
    config: Path,
    name: str,
    tmp_path: Path,
    *,
    args: Sequence[str] = (),
    watchdog_usec: int | None = None,
    prefix: Sequence[str] = (),
) -> Iterator[tuple[subprocess.Popen[str], FakeSystemd]]:
    """``rovbus COMMAND --config CONFIG NAME ARGS`` with its own fake systemd socket;
    ``prefix`` runs it through another command (``ip netns exec NS``, which execs it)."""
    # AF_UNIX paths are short (108 bytes): the socket goes under /tmp, not tmp_path
    systemd = FakeSystemd(Path("/tmp") / f"rovbus-notify-{uuid.uuid4().hex[:12]}.sock")
    env = dict(os.environ, NOTIFY_SOCKET=str(systemd.path), XDG_RUNTIME_DIR=str(tmp_path))
    env.pop("RUNTIME_DIRECTORY", None)
    if watchdog_usec is not None:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "rovbus", command, "--config", str(config), name, *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    systemd.proc = proc
    try:
        yield proc, systemd
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
        systemd.close()


@contextmanager
def node_process(
    config: Path, name: str, tmp_path: Path, *, watchdog_usec: int | None = None
) -> Iterator[tuple[subprocess.Popen[str], FakeSystemd]]:
    with daemon_process("node", config, name, tmp_path, watchdog_usec=watchdog_usec) as got:
        yield got


@contextmanager
def forwarder_process(
    config: Path, name: str, tmp_path: Path, *, args: Sequence[str] = ()
) -> Iterator[tuple[subprocess.Popen[str], FakeSystemd]]:
    with daemon_process("forwarder", config, name, tmp_path, args=args) as got:
        yield got


@contextmanager
def running(
    config: Path,
    tmp_path: Path,
    nodes: Sequence[str] = (),
    forwarders: Sequence[str] = (),
    *,
    forwarder_args: Sequence[str] = (),
    prefix: Sequence[str] = (),
) -> Iterator[dict[str, tuple[subprocess.Popen[str], FakeSystemd]]]:
    """Start forwarders then nodes (all at once), wait for every READY=1, stop them all
    (``prefix`` as for ``daemon_process``)."""
    with ExitStack() as stack:
        started: dict[str, tuple[subprocess.Popen[str], FakeSystemd]] = {}
        for name in forwarders:
            started[name] = stack.enter_context(
                daemon_process(
                    "forwarder", config, name, tmp_path, args=forwarder_args, prefix=prefix
                )
            )
        for name in nodes:
            started[name] = stack.enter_context(
                daemon_process("node", config, name, tmp_path, prefix=prefix)
            )
        for name, (proc, systemd) in started.items():
            try:
                systemd.wait_for("READY=1", timeout=30)
            except AssertionError as exc:
                if proc.poll() is None:
                    proc.kill()
                _, err = proc.communicate(timeout=10)
                raise AssertionError(f"{name} did not start ({exc}):\n{err}") from None
        yield started
