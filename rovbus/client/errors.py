"""The client's own error: a node answered, and the answer was an error.

Timeouts are :class:`rovbus.errors.RequestTimeout` (also a ``TimeoutError``); a bad node
name or group is a :class:`rovbus.errors.ConfigError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rovbus.errors import RovbusError

if TYPE_CHECKING:
    from rovbus.wire.message import Message

__all__ = ["RequestFailed"]


class RequestFailed(RovbusError):
    """A node answered a request with ``{"status": "error", ...}``.

    ``reply`` is the whole reply message; ``ename`` and ``evalue`` come from its content.
    """

    def __init__(self, node: str, reply: Message) -> None:
        content = reply.content
        self.node = node
        self.reply = reply
        self.ename = str(content.get("ename", "Error"))
        self.evalue = str(content.get("evalue", ""))
        super().__init__(f"{node}: {reply.msg_type}: {self.ename}: {self.evalue}")
