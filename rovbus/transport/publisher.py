"""Publishing envelopes on a PUB socket from the event loop thread.

A PUB socket never blocks: past the high-water mark ZeroMQ drops for that subscriber.
Sends therefore go through a plain (non-asyncio) socket with ``NOBLOCK``, which costs a
fraction of an awaited send; this is the per-frame hot path of a node.
"""

from __future__ import annotations

from typing import Any

import zmq

from rovbus.transport.stats import SocketStats
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from rovbus.wire.serializers import Serializer


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

    def publish(
        self,
        topic: str,
        msg_type: str,
        content: dict[str, Any],
        *,
        parent: Message | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        message = self.codec.message(
            msg_type,
            content,
            parent=parent,
            metadata=metadata,
            identities=(topic.encode(),),
            serializer=self.serializer,
        )
        self.send_frames(self.codec.encode(message))

    def send_frames(self, frames: list[bytes]) -> None:
        """Send already-encoded frames (a forwarder's cache, a replayed log)."""
        try:
            self.socket.send_multipart(frames, flags=zmq.NOBLOCK)
        except zmq.Again:
            self.stats.dropped += 1
            return
        self.stats.messages_out += 1
        self.stats.bytes_out += sum(len(f) for f in frames)

    def close(self, linger_ms: int | None = None) -> None:
        if not self.socket.closed:
            self.socket.close(linger=linger_ms)
