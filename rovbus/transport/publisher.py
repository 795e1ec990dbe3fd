"""Publishing envelopes on a PUB socket from the event loop thread.

A PUB socket never blocks: past the high-water mark ZeroMQ drops for that subscriber.
Sends therefore go through a plain (non-asyncio) socket with ``NOBLOCK``, which costs a
fraction of an awaited send; this is the per-frame hot path of a node.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import zmq

from rovbus.transport.stats import SocketStats
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from rovbus.wire.serializers import Serializer

#: the compiled ``send`` of pyzmq's socket class, under the Python-level ``zmq.Socket.send``
_send: Callable[..., Any] = zmq.backend.Socket.send
_MORE = zmq.SNDMORE | zmq.NOBLOCK


class Publisher:
    """Encodes and publishes messages, each under a topic, with one codec."""

    def __init__(
        self, name: str, socket: zmq.Socket[Any], codec: Codec, serializer: Serializer
    ) -> None:
        self.name = name
        self.socket = socket
        self.codec = codec
        self.serializer = serializer
        self.stats = SocketStats()
        # a plain zmq.Socket (not one whose send is overridden, as zmq.asyncio's is)
        self._fast = type(socket).send is zmq.Socket.send

    def publish(
        self,
        topic: str,
        msg_type: str,
        content: dict[str, Any],
        *,
        parent: Message | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if parent is None and metadata is None:  # every CAN frame: no Message built
            frames = self.codec.encode_new(msg_type, content, (topic.encode(),), self.serializer)
        else:
            message = self.codec.message(
                msg_type,
                content,
                parent=parent,
                metadata=metadata,
                identities=(topic.encode(),),
                serializer=self.serializer,
            )
            frames = self.codec.encode(message)
        self.send_frames(frames)

    def send_frames(self, frames: list[bytes]) -> None:
        """Send already-encoded frames (a forwarder's cache, a replayed log)."""
        # send_multipart, less its per-frame Python layers (type checks, the sugar
        # Socket.send): a third of the cost of sending a 7-frame envelope.
        sock = self.socket
        try:
            if self._fast:
                send = _send
                for frame in frames[:-1]:
                    send(sock, frame, _MORE)
                send(sock, frames[-1], zmq.NOBLOCK)
            else:
                sock.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            self.stats.dropped += 1
            return
        self.stats.messages_out += 1
        self.stats.bytes_out += sum(map(len, frames))

    def close(self, linger_ms: int | None = None) -> None:
        if not self.socket.closed:
            self.socket.close(linger=linger_ms)
