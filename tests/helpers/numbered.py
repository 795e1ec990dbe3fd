"""A publisher for tests that numbers its messages per topic (header ``seq``) by hand, so
it can leave numbers out, as if a high-water mark on the way had dropped those messages."""

from __future__ import annotations

import zmq

from rovbus.wire.codec import Codec


class NumberedSender:
    """A PUB socket bound on loopback; ``send(topic, seq)`` publishes message ``seq``."""

    def __init__(self) -> None:
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind("tcp://127.0.0.1:*")
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)
        self.codec = Codec(username="demo")

    def send(self, topic: str, seq: int) -> None:
        frames = self.codec.encode_new("note", {"seq": seq}, (topic.encode(),), seq=seq)
        self.sock.send_multipart(frames)

    def close(self) -> None:
        self.sock.close(0)
        self.ctx.term()
