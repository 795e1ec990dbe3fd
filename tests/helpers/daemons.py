"""Daemons as real processes: ``rovbus node``/``rovbus forwarder`` with a fake systemd
notify socket each; start them, wait for READY=1, stop them."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.helpers.notify import FakeSystemd


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
    systemd = FakeSystemd()
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
