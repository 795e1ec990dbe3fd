"""systemd's notify protocol, spoken directly (no python-systemd dependency).

A service with ``Type=notify`` tells systemd how it is doing by sending datagrams of
``KEY=VALUE`` lines to the ``AF_UNIX`` socket named in ``$NOTIFY_SOCKET`` (see
``sd_notify(3)``)::

    notifier = SystemdNotifier.from_env()      # None when not run by systemd
    if notifier is not None:
        notifier.ready("3 buses, 0 errors")      # READY=1 + STATUS=...
        interval = notifier.watchdog_interval()  # half of WatchdogSec=, or None
        ...
        notifier.watchdog()                      # WATCHDOG=1, every `interval` seconds
        notifier.stopping()                      # STOPPING=1
        notifier.close()

``$NOTIFY_SOCKET`` is a filesystem path (``/run/systemd/notify``) or an abstract socket
written with a leading ``@``. Sending never raises: a daemon must not die because systemd
could not be told something. Failures are counted in :attr:`SystemdNotifier.failures`
and the last one is kept in :attr:`SystemdNotifier.last_error`. The socket is
non-blocking, so a notification never stalls an event loop; a full receive queue is a
counted failure like any other.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from rovbus.closing import Closing

__all__ = ["SystemdNotifier", "watchdog_interval"]


def _address(value: str) -> str:
    """The ``AF_UNIX`` address for a ``$NOTIFY_SOCKET`` value; ValueError if unsupported."""
    if value.startswith("@"):
        if len(value) == 1:
            raise ValueError("NOTIFY_SOCKET='@' names no abstract socket")
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    raise ValueError(
        f"NOTIFY_SOCKET={value!r} is not supported; expected an absolute path or "
        "@abstract-name (vsock addresses are not)"
    )


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings: half of ``$WATCHDOG_USEC``, or None.

    None when ``$WATCHDOG_USEC`` is unset, not a positive integer, or when
    ``$WATCHDOG_PID`` is set to a process other than this one (the watchdog is then
    someone else's to feed).
    """
    env = os.environ if environ is None else environ
    usec_text = env.get("WATCHDOG_USEC", "")
    try:
        usec = int(usec_text)
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid_text = env.get("WATCHDOG_PID", "")
    if pid_text:
        try:
            pid = int(pid_text)
        except ValueError:
            return None
        if pid != os.getpid():
            return None
    return usec / 2 / 1_000_000


class SystemdNotifier(Closing):
    """A datagram socket that sends ``sd_notify`` messages to one address.

    Build it with :meth:`from_env` in a daemon, or directly with the address (a path, or
    ``@name`` for an abstract socket) in tests.
    """

    __slots__ = ("_address", "_environ", "_socket", "address", "failures", "last_error", "sent")

    def __init__(self, address: str, *, environ: Mapping[str, str] | None = None) -> None:
        self.address = address
        """The address as given (``/path`` or ``@name``)."""
        self._address = _address(address)
        self._environ: Mapping[str, str] = os.environ if environ is None else environ
        self._socket: socket.socket | None = socket.socket(
            socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
        )
        self._socket.setblocking(False)
        self.sent = 0
        """Datagrams handed to the kernel."""
        self.failures = 0
        """Notifications that could not be sent (vanished socket, full queue, closed)."""
        self.last_error: Exception | None = None
        """Why the most recent failure happened."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier | None:
        """A notifier for ``$NOTIFY_SOCKET``, or None when it is unset or empty.

        ValueError when it is set to an address this module cannot use (a relative path or
        a vsock address): better a clear error at start than a unit that times out waiting
        for ``READY=1``.
        """
        env = os.environ if environ is None else environ
        value = env.get("NOTIFY_SOCKET", "")
        if not value:
            return None
        return cls(value, environ=env)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._socket is None

    def notify(self, *lines: str) -> None:
        """Send ``lines`` as one datagram, joined by newlines. Never raises.

        Each line is a ``KEY=VALUE`` assignment from ``sd_notify(3)``; a line must not
        contain a newline itself (use :meth:`status` for free text). A failure, including a
        call after :meth:`close`, adds one to :attr:`failures`.
        """
        try:
            if self._socket is None:
                raise OSError("the notifier is closed")
            data = "\n".join(lines).encode("utf-8")
            self._socket.sendto(data, self._address)
        except Exception as exc:  # a failure to notify must not kill a daemon
            self.failures += 1
            self.last_error = exc
        else:
            self.sent += 1

    def ready(self, status: str = "") -> None:
        """``READY=1``, with ``STATUS=status`` when a status is given."""
        self.notify("READY=1", *_status_lines(status))

    def watchdog(self) -> None:
        """``WATCHDOG=1``: feed the service watchdog (``WatchdogSec=``)."""
        self.notify("WATCHDOG=1")

    def status(self, text: str) -> None:
        """``STATUS=text``, the line ``systemctl status`` shows. Newlines become spaces."""
        self.notify(*_status_lines(text, always=True))

    def stopping(self, status: str = "") -> None:
        """``STOPPING=1``: shutdown has begun; with ``STATUS=status`` when one is given."""
        self.notify("STOPPING=1", *_status_lines(status))

    def extend_timeout(self, seconds: float) -> None:
        """``EXTEND_TIMEOUT_USEC``: ask for ``seconds`` more to start or stop."""
        self.notify(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1_000_000))}")

    def watchdog_interval(self) -> float | None:
        """Seconds between :meth:`watchdog` calls, or None; see :func:`watchdog_interval`."""
        return watchdog_interval(self._environ)

    def close(self) -> None:
        """Close the socket. Idempotent."""
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def __repr__(self) -> str:
        state = "closed" if self._socket is None else "open"
        return (
            f"<SystemdNotifier {self.address!r} {state} sent={self.sent} failures={self.failures}>"
        )


def _status_lines(text: str, *, always: bool = False) -> tuple[str, ...]:
    """``("STATUS=text",)`` with newlines flattened, or ``()`` for an empty text."""
    if not text and not always:
        return ()
    flat = " ".join(str(text).splitlines())
    return (f"STATUS={flat}",)
