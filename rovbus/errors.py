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
    │   ├── RequestTimeout     (also a TimeoutError)
    │   └── NodeUnreachable    a forwarder's node: not connected, or no reply in time
    ├── ConfigError            names the file, the key path and what was expected
    ├── CanError               a CAN bus or a frame for it (python-can's CanError, ours)
    │   ├── CanRefused         the caller's: a frame the allow-list or bus refuses, a full
    │   │                      queue, transmit off, a port closed; nothing was tried
    │   └── CanFailed          the bus's: cannot open, down, bus-off, a write error
    ├── RequestFailed          a daemon answered a request with an error reply (client)
    ├── UnknownRequest         a request type the channel does not answer
    ├── CommandError           a console command failed (execute_request)
    ├── RouteError             a forwarder cannot route a request (frames, channel)
    │   └── UnknownNode        the request names a node not behind the forwarder
    ├── HelmError              the helm of a bus (rovbus.node.helm, docs/operations.md)
    │   ├── HelmRefused        a frame or request that needs the helm, from one without it
    │   └── HelmLost           the caller held the helm and lost it (taken over, lease out)
    ├── ShuttingDown           a daemon that is stopping refuses a request (error replies)
    ├── NativeLogError         not a .rbl file, or one of an unknown version
    └── SupervisorError        a demo child could not start or did not become ready

The class names of those a daemon raises while answering a request travel as the error
reply's ``ename``: they are the protocol's error vocabulary (docs/protocol.md, Errors).
"""

from __future__ import annotations

from typing import Any, Protocol


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


class NodeUnreachable(TransportError):
    """A forwarder's node is not connected, or did not answer in time."""


class CanError(RovbusError):
    """A CAN bus or a frame for it: the base of :class:`CanRefused` and :class:`CanFailed`.

    As python-can's ``CanOperationError`` and ``CanInitializationError`` tell the phase,
    these tell whose it is: ``except CanError`` takes both.
    """


class CanRefused(CanError):
    """The caller's: nothing was put on the bus, and the bus is fine.

    A frame that is malformed or not in the bus's ``tx_allow``, FD on a classic bus, a
    full transmit queue, transmit turned off (or queued frames dropped by ``tx_off`` or an
    interrupt), a port that is closed.
    """


class CanFailed(CanError):
    """The bus's: it could not be opened, is down or bus-off, or a write to it failed.

    Frames queued when it failed are dropped with this error; the port reopens the bus
    in the background.
    """


class ErrorReply(Protocol):
    """What :class:`RequestFailed` reads of a reply (a ``rovbus.wire.message.Message``:
    this module imports nothing of rovbus)."""

    @property
    def msg_type(self) -> str: ...

    @property
    def content(self) -> dict[str, Any]: ...


class RequestFailed(RovbusError):
    """A daemon answered a request with ``{"status": "error", ...}`` (raised by the client).

    ``reply`` is the whole reply message; ``ename`` and ``evalue`` come from its content.
    """

    def __init__(self, node: str, reply: ErrorReply) -> None:
        content = reply.content
        self.node = node
        self.reply = reply
        self.ename = str(content.get("ename", "Error"))
        self.evalue = str(content.get("evalue", ""))
        super().__init__(f"{node}: {reply.msg_type}: {self.ename}: {self.evalue}")


class UnknownRequest(RovbusError):
    """A request type the channel does not answer."""


class CommandError(RovbusError):
    """A console command failed; the message is shown to the operator."""


class RouteError(RovbusError):
    """A forwarder cannot route a request (bad routing frames, unknown channel)."""


class UnknownNode(RouteError):
    """The request names a node that is not behind this forwarder."""


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


class NativeLogError(RovbusError):
    """A file is not a rovbus native log, or is of an unknown version."""


class SupervisorError(RovbusError):
    """A child of the demo supervisor could not be started or did not become ready."""


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
