"""Helpers for the helm tests: a node whose bus ``can0`` has a helm, what reaches its wire.

In process: the node runs on its own loop thread (``HelmNode``) on a python-can virtual
bus; ``Wire`` is another device on that bus and records every frame it sees, so a test
asserts what reached the bus, not counters. Peers are raw pyzmq DEALERs (``Peer``), each
a client of its own (its own session). For daemons as subprocesses the bus is python-can's
``udp_multicast`` on a port of the test's own, which a ``Wire`` in the test process hears.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass

import can

from rovbus.config import SystemConfig
from rovbus.node.daemon import NodeDaemon
from rovbus.wire.codec import Codec
from tests.helpers import canwire
from tests.helpers.canwire import Seen
from tests.helpers.systemfile import node_toml
from tests.reliability.threads import DaemonThread, Peer

#: the thrusters of the tests: setpoints 0x200-0x207 need the helm; 0x210 is all-stop
HELM = (
    'helm = { ids = ["0x200-0x20F"], failsafe = ["200#0000", "201#0000", "210#01"], '
    "lease_ms = LEASE, repeat_ms = REPEAT }"
)
TX_ALLOW = '["0x200-0x20F", "0x210", "0x300-0x30F"]'
FAILSAFE = {(0x200, b"\x00\x00"), (0x201, b"\x00\x00"), (0x210, b"\x01")}


def helm_node_toml(
    name: str = "prop",
    *,
    lease_ms: int = 300,
    repeat_ms: int = 0,
    multicast_port: int | None = None,
    queue_size: int | None = None,
) -> str:
    """A ``node_toml`` table whose ``can0`` has the tests' helm (on udp_multicast at
    ``multicast_port`` when given, for a node in another process)."""
    table = node_toml(name, tx_allow=TX_ALLOW)
    table += HELM.replace("LEASE", str(lease_ms)).replace("REPEAT", str(repeat_ms)) + "\n"
    if queue_size is not None:
        table += f"queue_size = {queue_size}\n"
    if multicast_port is not None:
        lines = []
        for line in table.splitlines():
            if line.startswith("interface = "):
                line = 'interface = "udp_multicast"'
            elif line.startswith("channel = "):
                line = f'channel = "{MULTICAST_GROUP}"\noptions = {{ port = {multicast_port} }}'
            lines.append(line)
        table = "\n".join(lines) + "\n"
    return table


MULTICAST_GROUP = "239.74.163.2"


def failsafe(seen: Seen) -> bool:
    return (seen.id, seen.data) in FAILSAFE


def helm_frame(seen: Seen) -> bool:
    """A frame to a helm ID that is not a failsafe frame."""
    return 0x200 <= seen.id <= 0x20F and not failsafe(seen)


class Wire(canwire.Wire):
    """The bus of the tests' helm, as another device on it sees it."""

    def wait_failsafe(self, after: int = 0, timeout: float = 10.0) -> int:
        return self.wait(failsafe, after, timeout)

    def all_failsafe_seen(self, after: int = 0, timeout: float = 10.0) -> None:
        """Until every failsafe frame has come, from index ``after`` on."""
        missing = set(FAILSAFE)

        def seen_all(seen: Seen) -> bool:
            missing.discard((seen.id, seen.data))
            return not missing

        self.wait(seen_all, after, timeout)


class SlowBus(can.BusABC):
    """A virtual bus whose ``send`` takes ``delay`` seconds (a busy bus): the node's
    transmit queue stays full."""

    def __init__(self, channel: str, delay: float) -> None:
        self._inner = can.Bus(interface="virtual", channel=channel)
        self._delay = delay
        super().__init__(channel=channel)

    def send(self, msg: can.Message, timeout: float | None = None) -> None:
        time.sleep(self._delay)
        self._inner.send(msg, timeout)

    def _recv_internal(self, timeout: float | None) -> tuple[can.Message | None, bool]:
        return self._inner.recv(timeout), False

    def shutdown(self) -> None:
        self._inner.shutdown()
        super().shutdown()


class HelmNode(DaemonThread):
    """A node with a helm on ``can0``, on a loop thread of its own."""

    def __init__(self, system: SystemConfig, name: str, slow: float = 0.0) -> None:
        self.system = system
        self.name = name
        channel = str(system.node(name).bus("can0").channel)
        factories = {"can0": (lambda: SlowBus(channel, slow))} if slow else None
        super().__init__(NodeDaemon(system, name, bus_factories=factories), serve=True)
        self.daemon: NodeDaemon

    def endpoint(self, channel: str) -> str:
        return str(getattr(self.daemon.config.endpoints, channel))


@dataclass
class Rig:
    node: HelmNode
    wire: Wire
    peers: list[Peer]

    def peer(self, username: str) -> Peer:
        key = self.node.system.hmac_key()
        peer = Peer(self.node, Codec(key, username=username))  # type: ignore[arg-type]
        self.peers.append(peer)
        return peer


def unique_port() -> int:
    """A UDP port for one test's multicast bus."""
    return 20000 + uuid.uuid4().int % 20000
