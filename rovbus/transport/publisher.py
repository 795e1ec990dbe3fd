"""Publishing envelopes on a PUB socket from the event loop thread.

A PUB socket never blocks: past the high-water mark ZeroMQ drops for that subscriber,
silently. Sends therefore go through ``send_now`` on a plain (non-asyncio) socket, which
costs a fraction of an awaited send; this is the per-frame hot path of a node.

Every message ``publish`` sends carries ``seq`` in its header: 1 for the first message on
its topic from this publisher, one more for each after. A subscriber counts the messages
it missed from the gaps (``Subscriber``, ``SocketStats.missed``), which is the only place
a PUB socket's drops can be counted. The table of counters holds at most
``MAX_SEQ_TOPICS`` topics; past that it is cleared and every topic starts again at 1.
"""

from __future__ import annotations

from typing import Any

import zmq

from rovbus.transport.sendnow import send_counted
from rovbus.transport.stats import SocketStats
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from rovbus.wire.serializers import Serializer

#: topics whose sequence number a publisher keeps; one more clears them all (restart at 1)
MAX_SEQ_TOPICS = 65_536


class TopicSequence:
    """Message numbers per topic: 1 for a topic's first message, one more for each after.

    Holds at most ``MAX_SEQ_TOPICS`` topics; one more clears the table and every topic
    starts again at 1 (subscribers allow for that)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, int] = {}

    def next(self, topic: str) -> int:
        last = self._last
        seq = last.get(topic, 0) + 1
        if seq == 1 and len(last) >= MAX_SEQ_TOPICS:
            last.clear()
        last[topic] = seq
        return seq

    def unwind(self, topic: str, seq: int) -> None:
        """Give back ``seq``, the number ``next`` just gave for a message that was never
        sent, so that subscribers do not count it as lost."""
        last = self._last
        if last.get(topic) == seq:
            if seq > 1:
                last[topic] = seq - 1
            else:
                del last[topic]

    def __len__(self) -> int:
        return len(self._last)


class Publisher:
    """Encodes and publishes messages, each under a topic and numbered per topic, with
    one codec."""

    def __init__(
        self, name: str, socket: zmq.Socket[Any], codec: Codec, serializer: Serializer
    ) -> None:
        self.name = name
        self.codec = codec
        self.serializer = serializer
        self.stats = SocketStats()
        self.seqs = TopicSequence()
        self.socket = socket

    def use_socket(self, socket: zmq.Socket[Any]) -> None:
        """Publish on ``socket`` from now on (a guarded publisher's after a reset)."""
        self.socket = socket

    def publish(
        self,
        topic: str,
        msg_type: str,
        content: dict[str, Any],
        *,
        parent: Message | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        seq = self.seqs.next(topic)
        try:
            if parent is None and metadata is None:  # every CAN frame: no Message built
                frames = self.codec.encode_new(
                    msg_type, content, (topic.encode(),), self.serializer, seq
                )
            else:
                message = self.codec.message(
                    msg_type,
                    content,
                    parent=parent,
                    metadata=metadata,
                    identities=(topic.encode(),),
                    serializer=self.serializer,
                    seq=seq,
                )
                frames = self.codec.encode(message)
        except BaseException:  # content that does not serialize: nothing goes out
            self.seqs.unwind(topic, seq)
            raise
        self.send_frames(frames)

    def send_frames(self, frames: list[bytes]) -> None:
        """Send already-encoded frames (a forwarder's cache, a replayed log) as they are:
        no ``seq`` of this publisher is added or counted."""
        send_counted(self.socket, frames, self.stats)

    def close(self, linger_ms: int | None = None) -> None:
        if not self.socket.closed:
            self.socket.close(linger=linger_ms)
