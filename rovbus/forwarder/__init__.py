"""Forwarders: the boundary between two groups (the tether), run as ``rovbus forwarder NAME``.

What this layer promises:

- **Pub-sub across the boundary** in libzmq, not Python: an XSUB connected to every pub
  endpoint behind (inner nodes, and the outer side of inner forwarders, so forwarders
  chain) and an XPUB bound outside, joined by ``zmq.proxy_steerable`` in its own thread.
  Subscriptions travel upstream, so only what someone outside subscribed to crosses.
  libzmq's ``STATISTICS`` gives the counters (:mod:`rovbus.forwarder.pubpath`).
- **Late joiners** get every node's latest ``hb`` and ``status`` at once, from a
  last-value cache that sits upstream of the proxy as one more publisher and sees
  subscriptions, never the data (:mod:`rovbus.forwarder.lvc`).
- **Requests by node name**: ``[..., node, channel, <IDS|MSG>, ...]`` to the ``request``
  endpoint reaches the node, its reply comes back, through any number of forwarders.
  Every request gets an answer: the node's, or an error reply naming the cause (unknown
  node, not connected, timeout) (:mod:`rovbus.forwarder.routing`).
- **Edge security**: with ``[security.curve]`` the outer sockets are CURVE servers and a
  ZAP handler admits only listed client keys; with a key, requests are verified before
  they go in; the name of the client key goes into the request for the node's transmit
  provenance (:mod:`rovbus.transport.curve`, :mod:`rovbus.forwarder.curvekey`).
- **A daemon**: its own ``<name>/hb`` with counters; ``kernel_info``, ``node_info``,
  ``stats``, ``pause``, ``resume`` and ``shutdown`` on its ``control`` endpoint; sd_notify
  and a clean SIGTERM through :func:`rovbus.daemon.process.run_daemon`: replies to requests
  forwarded still come back for a moment, and requests not yet read get a ``ShuttingDown``
  error reply.
- **Bounded input from outside**: ``[system] max_message_size`` on the request and
  control ROUTERs; on the XPUB, ``[system] max_prefix`` bytes per subscription and a cap
  on how many are in force (:class:`rovbus.transport.subguard.ProxyGuard`): beyond it the
  pub path is reset, which frees them here and at every node behind, and the peer that
  sent the most is refused for a while.
"""

from rovbus.errors import RouteError, UnknownNode
from rovbus.forwarder.daemon import ForwarderDaemon
from rovbus.forwarder.lvc import LastValueCache
from rovbus.forwarder.pubpath import ProxyStats, PubPath
from rovbus.forwarder.routing import DEFAULT_TIMEOUT, RequestRouter
from rovbus.forwarder.topology import Topology, topology_of

__all__ = [
    "DEFAULT_TIMEOUT",
    "ForwarderDaemon",
    "LastValueCache",
    "ProxyStats",
    "PubPath",
    "RequestRouter",
    "RouteError",
    "Topology",
    "UnknownNode",
    "topology_of",
]
