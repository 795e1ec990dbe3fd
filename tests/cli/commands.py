"""A node daemon as a real process, and `rovbus` commands run against it."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.daemons import daemon_process
from tests.helpers.systemfile import node_toml, system_toml

ALL_IDS = '["0x0-0x7FF", "ext:0x0-0x1FFFFFFF"]'


@dataclass
class Bus:
    """A running node process and the system file that describes it."""

    config: Path
    node: str
    proc: subprocess.Popen[str]

    def env(self) -> dict[str, str]:
        return dict(os.environ, ROVBUS_CONFIG=str(self.config))

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``rovbus ARGS`` to completion."""
        return subprocess.run(
            [sys.executable, "-m", "rovbus", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, *args: str) -> Background:
        """Start ``rovbus ARGS -v`` and wait until it logs that it is listening."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "rovbus", *args, "-v"],
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        bg = Background(proc)
        bg.wait_stderr("listening")
        return bg


class Background:
    """A command running in the background; ``stderr_seen`` holds what it logged so far."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.stderr_seen = ""

    def wait_stderr(self, text: str, timeout: float = 15.0) -> None:
        assert self.proc.stderr is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stderr, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        try:
            while text not in self.stderr_seen:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    self.proc.kill()
                    raise AssertionError(f"no {text!r} on stderr; got {self.stderr_seen!r}")
                line = self.proc.stderr.readline()
                if not line:
                    raise AssertionError(f"exited before {text!r}: {self.stderr_seen!r}")
                self.stderr_seen += line
        finally:
            sel.close()

    def finish(self, timeout: float = 30.0) -> tuple[int, str, str]:
        """Wait for the exit; (exit status, stdout, the whole stderr)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            raise AssertionError(
                f"still running after {timeout} s: {self.stderr_seen}{err}"
            ) from None
        return self.proc.returncode, out, self.stderr_seen + err

    def interrupt(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGINT)
        return self.finish()


@contextmanager
def node_running(
    tmp: Path, name: str = "alpha", interval: float = 0.2, batch: str | None = None
) -> Iterator[Bus]:
    """Node ``name`` (bus ``can0``, every ID allowed) as a process, from READY=1 until the
    block ends; then SIGTERM."""
    config = tmp / "system.toml"
    node = node_toml(name, tx_allow=ALL_IDS, batch=batch)
    config.write_text(system_toml(node, interval=interval))
    with daemon_process("node", config, name, tmp) as (proc, systemd):
        systemd.wait_for("READY=1")
        try:
            yield Bus(config, name, proc)
        finally:
            proc.terminate()
            with suppress(subprocess.TimeoutExpired):
                proc.wait(10)


G = ("--group", "vehicle")
