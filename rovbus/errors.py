"""The one exception tree of rovbus.

Library code raises these; daemons and the CLI catch them at task boundaries and log or
print them. ``ValueError`` stays for bad arguments to a function.

::

    RovbusError
    ├── WireError
    │   ├── EnvelopeError      malformed multipart message or dict frame
    │   ├── SignatureError     unsigned, forged, replayed or stale message
    │   └── FrameSyntaxError   bad cansend/candump text (also a ValueError)
    ├── TransportError
    │   └── RequestTimeout     (also a TimeoutError)
    ├── ConfigError            names the file, the key path and what was expected
    ├── CanError
    ├── HelmError              the helm of a bus (rovbus.node.helm, docs/operations.md)
    │   ├── HelmRefused        a frame or request that needs the helm, from one without it
    │   └── HelmLost           the caller held the helm and lost it (taken over, lease out)
    └── ShuttingDown           a daemon that is stopping refuses a request (error replies)
"""

from __future__ import annotations


class RovbusError(Exception):
    """Base of every error rovbus raises on purpose."""


class WireError(RovbusError):
    """A message could not be encoded or decoded."""


class EnvelopeError(WireError):
    """The multipart envelope or one of its dict frames is malformed."""


class SignatureError(WireError):
    """A message is unsigned, its signature is wrong, it was replayed, or it is too old."""


class TransportError(RovbusError):
    """A ZeroMQ socket could not be bound, connected or used."""


class RequestTimeout(TransportError, TimeoutError):
    """A request got no reply in time."""


class ConfigError(RovbusError):
    """The system file is missing, unreadable or invalid.

    ``problems`` holds every finding, each naming the key path and what was expected; the
    message joins them under the file's path.
    """

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{path}: invalid system file\n{lines}" if lines else path)


class CanError(RovbusError):
    """A CAN bus could not be opened, read or written, or a frame is invalid."""


class HelmError(RovbusError):
    """Something the helm of a bus does not allow (the ``ename`` of an error reply)."""


class HelmRefused(HelmError):
    """Frames to helm IDs, or a renewal, from a client that does not hold the helm; or a
    take that another holder refuses. The message names the holder (or says no one holds
    it) and how to take the helm."""


class HelmLost(HelmError):
    """The caller held the helm and no longer does: taken over (the message names who and
    why), its lease ran out, a stop, or transmit turned off. Take it again to go on."""


class ShuttingDown(RovbusError):
    """A daemon that is stopping refuses a request.

    Its ``ename`` in an error reply; the ``evalue`` names the node or forwarder and says
    whether the request was carried out (it was not, unless it was interrupted midway).
    """


class FrameSyntaxError(WireError, ValueError):
    """A CAN frame in can-utils text form (cansend, candump ``-L``) could not be parsed.

    ``text`` is the text as given, ``position`` the index of the offending character
    (``len(text)`` when something is missing at the end), ``problem`` what was expected
    there. The message shows the text with a caret under that character.
    """

    def __init__(self, text: str, position: int, problem: str) -> None:
        super().__init__(text, position, problem)
        self.text = text
        self.position = position
        self.problem = problem

    def __str__(self) -> str:
        return (
            f"bad CAN frame {self.text!r}: {self.problem} at position {self.position}\n"
            f"  {self.text}\n"
            f"  {' ' * self.position}^"
        )
