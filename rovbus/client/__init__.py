"""The operator API: subscribe, request, transmit, and the node table.

What this layer promises: a client reaches every node its group can reach, straight or
through forwarders (:mod:`rovbus.client.routes`), with the system's keys (a request signed
with its node's start key, learned from the node's heartbeat); a lost reply is
retried on a fresh socket with the same msg_id (a node acts once); an error reply raises
:class:`RequestFailed` carrying the reply (``check=False`` returns it instead); only good
messages are yielded (bad ones are counted); messages a node published on a subscribed
topic that never arrived are counted too (``sub.stats.missed``, from the per-topic ``seq``
in their headers); ``aclose()`` is idempotent and releases every
socket. The ``rovbus`` CLI is built on it, so scripts behave as the commands do.

Async, as a member of the system file's default group (the first group without nodes,
such as ``topside``)::

    import asyncio
    from rovbus.client import Client

    async def main() -> None:
        async with Client.from_system("config/demo.toml") as client:
            info = await client.request("propulsion", "node_info")
            print(info.content["buses"])
            await client.send_frames("propulsion", "can0", ["123#DEADBEEF"])
            for frame in await client.tx_log("propulsion", "can0", limit=5):
                print(frame.arbitration_id, frame.origin)  # who asked, which request
            async with client.subscribe(["propulsion/can/"]) as sub:
                await sub.ready()             # joined: heartbeats arrived
                async for msg in sub:         # rovbus.wire.Message
                    print(msg.topic, msg.content)
                    break
            print(sub.stats.missed)           # lost on the way (high-water marks)
            for row in await client.node_table():
                print(row.node, row.state, row.rx_rate)

    asyncio.run(main())

Blocking (the client runs its own event loop on a thread)::

    from rovbus.client import BlockingClient

    with BlockingClient.from_system("config/demo.toml", group="topside") as client:
        reply = client.request("propulsion", "stats")
        with client.subscribe(["propulsion/hb"]) as sub:
            print(sub.recv(timeout=5).content["uptime"])

Endpoints by hand, without a system file::

    Client.from_endpoints(pub=["tcp://10.0.0.2:5550"], request="tcp://10.0.0.2:5551")
"""

from rovbus.client.blocking import BlockingClient, BlockingHelm, BlockingSubscription
from rovbus.client.client import Client, curve_setup_for, request_type
from rovbus.client.helm import Helm
from rovbus.client.nodetable import UNHEARD, BusRow, NodeRow, NodeTable
from rovbus.client.rbl import NativeLogWriter, is_native_log, read_native_log
from rovbus.client.routes import (
    NodeRoute,
    PubSource,
    Routes,
    default_group,
    routes_for_group,
    routes_for_host,
)
from rovbus.client.subscription import Received, Subscription
from rovbus.errors import NativeLogError, RequestFailed

__all__ = [
    "UNHEARD",
    "BlockingClient",
    "BlockingHelm",
    "BlockingSubscription",
    "BusRow",
    "Client",
    "Helm",
    "NativeLogError",
    "NativeLogWriter",
    "NodeRoute",
    "NodeRow",
    "NodeTable",
    "PubSource",
    "Received",
    "RequestFailed",
    "Routes",
    "Subscription",
    "curve_setup_for",
    "default_group",
    "is_native_log",
    "read_native_log",
    "request_type",
    "routes_for_group",
    "routes_for_host",
]
