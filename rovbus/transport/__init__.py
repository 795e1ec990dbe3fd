"""ZeroMQ transport: sockets with bounded options, envelope channels, pub-sub, request-reply.

Promises: no socket lingers unboundedly on close; no send blocks the event loop (PUB drops
at the high-water mark and counts it); a receive never raises for what a peer sent (a
daemon's loops read through ``Intake``, which counts what a socket discarded; bad messages
come back as ``Rejected`` and are counted); every bind or connect failure is a
``TransportError`` that names the socket and the endpoint.
"""

from rovbus.transport.channel import Channel, Rejected, peek_header
from rovbus.transport.heartbeat import echo_forever
from rovbus.transport.intake import Intake
from rovbus.transport.liveness import Liveness, LivenessTracker, NodeLife
from rovbus.transport.publisher import Publisher
from rovbus.transport.requester import Requester
from rovbus.transport.sockets import DEFAULT_OPTIONS, SocketOptions, bind, connect
from rovbus.transport.stats import SocketStats
from rovbus.transport.subscriber import Subscriber

__all__ = [
    "DEFAULT_OPTIONS",
    "Channel",
    "Intake",
    "Liveness",
    "LivenessTracker",
    "NodeLife",
    "Publisher",
    "Rejected",
    "Requester",
    "SocketOptions",
    "SocketStats",
    "Subscriber",
    "bind",
    "connect",
    "echo_forever",
    "peek_header",
]
