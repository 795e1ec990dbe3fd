"""systemd's side of sd_notify: the datagram socket a daemon reports READY=1 (and more) on."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from pathlib import Path


def notify_path() -> Path:
    """A fresh path for a notify socket: under /tmp, since AF_UNIX paths are short (108
    bytes) and a test's tmp_path may be longer."""
    return Path("/tmp") / f"rovbus-notify-{uuid.uuid4().hex[:12]}.sock"


class FakeSystemd:
    """Plays systemd's side of sd_notify: a unix datagram socket the daemon writes to
    (``NOTIFY_SOCKET=path``), at ``path`` or a fresh one under /tmp."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = notify_path() if path is None else path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
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
