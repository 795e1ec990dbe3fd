"""System files for tests and tools: nodes and forwarders on fresh loopback ports, buses on
python-can virtual channels no other caller uses."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from tests.helpers.ports import free_ports

#: a node's channels in the order ``node_toml`` gives them ports (iopub last: optional)
NODE_CHANNELS = ("pub", "shell", "control", "stdin", "hb", "iopub")


def node_toml(
    name: str,
    group: str = "vehicle",
    buses: tuple[str, ...] = ("can0",),
    *,
    tx_allow: str | None = '["0x100-0x7FF", "0x18FF0000-0x18FFFFFF"]',
    batch: str | None = None,
    iopub: bool = True,
    host: str | None = None,
    bind: str = "127.0.0.1",
    interface: str = "virtual",
    channel: str | None = None,
    bus_keys: Mapping[str, str] | None = None,
    tx_log: int | None = None,
) -> str:
    """One ``[nodes.NAME]`` table on fresh ports, buses on unique virtual channels
    (``tx_allow`` None: the key left out); ``host``: its ``host`` key, ``bind``: the host
    part of every endpoint (an address, an interface, ``*`` or ``0.0.0.0``);
    ``interface`` and ``channel``: python-can's, for every bus; ``bus_keys``: more
    ``key = value`` lines for the bus of that name; ``tx_log``: the frames its transmit
    log keeps (None: the default)."""
    channels = NODE_CHANNELS if iopub else NODE_CHANNELS[:-1]
    ports = free_ports(len(channels))
    tag = uuid.uuid4().hex[:8]
    lines = [f"[nodes.{name}]", f'group = "{group}"']
    if host is not None:
        lines.append(f'host = "{host}"')
    if tx_log is not None:
        lines.append(f"tx_log = {tx_log}")
    lines.append(f"[nodes.{name}.endpoints]")
    lines += [f'{c} = "tcp://{bind}:{p}"' for c, p in zip(channels, ports, strict=True)]
    for bus in buses:
        lines += [
            f"[[nodes.{name}.buses]]",
            f'name = "{bus}"',
            f'interface = "{interface}"',
            f'channel = "{channel or f"test-{tag}-{name}-{bus}"}"',
        ]
        if tx_allow is not None:
            lines.append(f"tx_allow = {tx_allow}")
        if batch:
            lines.append(f"batch = {batch}")
        if bus_keys and bus in bus_keys:
            lines.append(bus_keys[bus])
    return "\n".join(lines) + "\n"


def forwarder_toml(
    name: str,
    inner: str = "vehicle",
    outer: str = "topside",
    *,
    host: str | None = None,
    bind: str = "127.0.0.1",
) -> str:
    """One ``[forwarders.NAME]`` table on fresh ports (``host``, ``bind`` as for
    ``node_toml``)."""
    ports = free_ports(3)
    on = f'host = "{host}"\n' if host is not None else ""
    return (
        f'[forwarders.{name}]\n{on}inner = "{inner}"\nouter = "{outer}"\n'
        f"[forwarders.{name}.endpoints]\n"
        f'pub = "tcp://{bind}:{ports[0]}"\n'
        f'request = "tcp://{bind}:{ports[1]}"\n'
        f'control = "tcp://{bind}:{ports[2]}"\n'
    )


def system_toml(*tables: str, interval: float = 0.2, extra: str = "", name: str = "test") -> str:
    """A whole system file: ``[system]``, the groups ``vehicle`` and ``topside``, ``extra``
    (e.g. ``[security]``), then the node and forwarder ``tables``."""
    return (
        f'[system]\nname = "{name}"\nheartbeat_interval = {interval}\n\n'
        "[groups.vehicle]\n[groups.topside]\n\n" + extra + "\n".join(tables)
    )
