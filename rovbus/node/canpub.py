"""CAN -> pub: what a node's ports hand it, onto its pub stream.

Each ``CanPort`` calls ``on_frames`` on the loop thread with bursts of frames it received
or put on the wire (marked ``tx``). They go to the bus's ring buffer (the console's
``dump``) and out as ``can_frame`` on ``<node>/can/<bus>/<ID>`` (each ID's topic made once,
up to ``TOPIC_CACHE_LIMIT`` a bus), or, on a batched bus, into a ``FrameBatcher`` that
publishes ``can_batch`` on ``<node>/can/<bus>``. A bus that changes state (failed,
reopened) says so at once: ``bus_status`` on ``<node>/status``.
"""

from __future__ import annotations

import contextlib
import functools

from rovbus.can import CanPort, FrameBatcher, RingBuffer
from rovbus.config.models import BusConfig
from rovbus.node.txlog import TxLog
from rovbus.transport import Publisher
from rovbus.wire.canframe import CanFrame, batch_content
from rovbus.wire.topics import batch_topic, can_topic, status_topic

__all__ = ["RING_SIZE", "TOPIC_CACHE_LIMIT", "CanStream"]

#: frames kept per bus for ``dump``
RING_SIZE = 256
#: topics made once and kept, per bus (beyond it, made per frame)
TOPIC_CACHE_LIMIT = 4096


class CanStream:
    """The frames of every bus of node ``node`` onto ``publishers["pub"]`` (the dict the
    node fills as it binds)."""

    def __init__(self, node: str, publishers: dict[str, Publisher], tx_log: TxLog) -> None:
        self.node = node
        self.publishers = publishers
        #: the frames the node transmitted, with their origins (rovbus/node/txlog.py)
        self.tx_log = tx_log
        self.rings: dict[str, RingBuffer[CanFrame]] = {}
        self.batchers: dict[str, FrameBatcher] = {}
        self._topics: dict[str, dict[tuple[int, bool], str]] = {}

    def add_bus(self, bus: BusConfig) -> None:
        """Make room for ``bus``'s frames: its ring, its topics and, batched, its batcher."""
        self.rings[bus.name] = RingBuffer(RING_SIZE)
        self._topics[bus.name] = {}
        if bus.batch is not None:
            self.batchers[bus.name] = FrameBatcher(
                bus.batch.max_frames,
                bus.batch.max_delay_ms / 1000.0,
                functools.partial(self._publish_batch, bus.name),
            )

    def on_frames(self, bus: str, frames: list[CanFrame]) -> None:
        """Called by the port of ``bus`` on the loop thread with frames received or sent."""
        self.rings[bus].extend(frames)
        self.tx_log.note(frames)
        batcher = self.batchers.get(bus)
        if batcher is not None:
            batcher.extend(frames)
            return
        publish = self.publishers["pub"].publish
        topic_of = self._can_topic
        for frame in frames:
            publish(topic_of(bus, frame), "can_frame", frame.to_content())

    def _can_topic(self, bus: str, frame: CanFrame) -> str:
        topics = self._topics[bus]
        key = (frame.arbitration_id, frame.is_extended_id)
        topic = topics.get(key)
        if topic is None:
            topic = can_topic(self.node, bus, frame.arbitration_id, frame.is_extended_id)
            if len(topics) < TOPIC_CACHE_LIMIT:
                topics[key] = topic
        return topic

    def _publish_batch(self, bus: str, frames: list[CanFrame]) -> None:
        self.publishers["pub"].publish(
            batch_topic(self.node, bus), "can_batch", batch_content(bus, frames)
        )

    def on_bus_state(self, port: CanPort) -> None:
        """A bus changed state (failed, reopened): say so on ``<node>/status`` at once."""
        pub = self.publishers.get("pub")
        if pub is not None and not pub.socket.closed:
            pub.publish(
                status_topic(self.node),
                "bus_status",
                {"bus": port.name, "state": port.state, "error": port.last_error},
            )

    def recent(self, bus: str, count: int) -> list[CanFrame]:
        """The last ``count`` frames of ``bus``; ``ValueError`` for a bus it does not have."""
        if bus not in self.rings:
            raise ValueError(f"node {self.node} has no bus {bus!r}; it has {', '.join(self.rings)}")
        return self.rings[bus].last(count)

    def close(self) -> None:
        """Publish what the batchers hold (best effort) and stop them."""
        for batcher in self.batchers.values():
            with contextlib.suppress(Exception):
                batcher.flush_now()
            batcher.close()
