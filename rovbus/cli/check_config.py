"""``rovbus check-config FILE``: load a system file, report every problem or summarize it.

Exit status 0 when the file is sound (a summary goes to stdout, ending with what each host
binds and reaches; ``--host NAME``: that host's view only), 2 when it is not (every
problem goes to stderr, each naming its key path). Only argparse is imported at module
level; the config layer (and pydantic with it) loads when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from rovbus.exitcodes import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from rovbus.config import BusConfig, SystemConfig
    from rovbus.config.hosts import Bind
    from rovbus.config.reach import Reach


EPILOG = """\
examples:
  rovbus check-config config/demo.toml
  rovbus check-config /etc/rovbus/vehicle.toml
  rovbus check-config --no-key-files /etc/rovbus/vehicle.toml   # on a laptop without the keys
  rovbus check-config --host main /etc/rovbus/vehicle.toml       # one computer's view

For each host (computer) it lists what its daemons bind and where the others connect to
each (the host's address for the group, whatever the bind says), then what a program on
that host reaches: each node, directly or through which forwarders, and the pubs to read.
A file without [hosts] is one computer, host "local".

exit status: 0 when the file is sound, 2 when it has problems (all listed on stderr) or
there is no such host
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``check-config`` command to the ``rovbus`` parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check-config",
        help="check a system file and summarize it",
        description=(
            "Load a system file, run every check, and print a summary of its groups, "
            "nodes, buses, endpoints, forwarders and hosts, or every problem found."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("file", metavar="FILE", help="the system file (TOML)")
    parser.add_argument(
        "--no-key-files",
        action="store_true",
        help="skip the checks that key files exist and are private",
    )
    parser.add_argument(
        "--host",
        metavar="NAME",
        help="show only what this host binds and reaches (one computer's view)",
    )
    return parser


def _rate(bits: int | None) -> str:
    if bits is None:
        return "default bitrate"
    if bits % 1_000_000 == 0:
        return f"{bits // 1_000_000} Mbit/s"
    if bits % 1000 == 0:
        return f"{bits // 1000} kbit/s"
    return f"{bits} bit/s"


def _bus_line(bus: BusConfig) -> str:
    rate = _rate(bus.bitrate)
    if bus.fd:
        rate += f", FD data {_rate(bus.data_bitrate)}" if bus.data_bitrate else ", FD"
    extras = []
    if bus.batch is not None:
        extras.append(f"batch {bus.batch.max_frames} frames/{bus.batch.max_delay_ms:g} ms")
    if bus.filters:
        extras.append(f"{len(bus.filters)} filter(s)")
    if bus.helm is not None:
        repeat = f", repeated every {bus.helm.repeat_ms} ms" if bus.helm.repeat_ms else ""
        extras.append(
            f"helm {bus.helm.ids} (lease {bus.helm.lease_ms} ms; failsafe "
            f"{' '.join(map(str, bus.helm.failsafe))}{repeat})"
        )
    about = f"{bus.name} ({bus.interface}:{bus.channel}, {rate})"
    return "; ".join([about, *extras])


def _tx_allow_lines(bus: BusConfig) -> list[str]:
    """What each ``tx_allow`` entry of ``bus`` allows, one line each."""
    if not bus.tx_allow:
        return ["tx_allow: nothing (this bus never transmits)"]
    return [
        f'tx_allow[{index}] "{entry.text}": {entry}'
        for index, entry in enumerate(bus.tx_allow.entries)
    ]


def summarize(config: SystemConfig) -> list[str]:
    """The summary lines printed for a sound file."""
    settings = config.system
    security = config.security
    lines = [
        f"system {settings.name} ({config.source})",
        f"  serializer {settings.serializer}; heartbeat every {settings.heartbeat_interval:g} s, "
        f"dead after {settings.dead_after} missed",
        "  signing: "
        + (f"on ({security.signature_scheme})" if security is not None else "off")
        + "; CURVE: "
        + ("on" if config.curve else "off"),
    ]
    for group in config.groups.values():
        about = f": {group.description}" if group.description else ""
        lines.append(f"group {group.name}{about}")
        nodes = config.nodes_in(group.name)
        if not nodes:
            lines.append("  (no nodes)")
        for node in nodes:
            lines.append(f"  node {node.name}{_on(config, node.host)}")
            for bus in node.buses:
                lines.append(f"    bus {_bus_line(bus)}")
                lines += [f"      {line}" for line in _tx_allow_lines(bus)]
            if not node.buses:
                lines.append("    (no buses)")
    for fwd in config.forwarders.values():
        lines.append(f"forwarder {fwd.name}: {fwd.inner} -> {fwd.outer}{_on(config, fwd.host)}")
    from rovbus.config.hosts import binds
    from rovbus.config.reach import groups_by_host, reach_from_groups

    bound: dict[str, list[Bind]] = {}
    for bind in binds(config):
        bound.setdefault(bind.host, []).append(bind)
    # hosts on the same groups reach the same: listed once, for the first of them
    first: dict[tuple[str, ...], tuple[str, Reach]] = {}
    for host, groups in groups_by_host(config).items():
        key = tuple(groups)
        if key in first:
            same_as, reach = first[key]
        else:
            same_as, reach = None, reach_from_groups(config, groups, f"host {host}")
            first[key] = (host, reach)
        lines += host_view(config, host, bound.get(host, []), reach, same_as)
    lines.append(
        f"ok: {len(config.groups)} group(s), {len(config.nodes)} node(s), "
        f"{sum(len(n.buses) for n in config.nodes.values())} bus(es), "
        f"{len(config.forwarders)} forwarder(s), {len(config.hosts) or 1} host(s)"
    )
    return lines


def _on(config: SystemConfig, host: str | None) -> str:
    return f" (host {host})" if config.hosts and host else ""


def _addresses(config: SystemConfig, host: str) -> str:
    entry = config.hosts.get(host)
    if entry is None:
        return "the file declares no hosts: one computer, a wildcard bind reached at 127.0.0.1"
    parts = [f"{group} at {address}" for group, address in entry.addresses.items()]
    if entry.address is not None:
        parts.append(f"{'others' if parts else 'every group'} at {entry.address}")
    return "reached from " + (", ".join(parts) or "nowhere (no address)")


def host_view(
    config: SystemConfig, host: str, bound: list[Bind], reach: Reach, same_as: str | None = None
) -> list[str]:
    """What ``host`` binds (and where each is reached) and what a program there reaches
    (``bound``, ``reach``), or that it reaches what host ``same_as`` does."""
    from rovbus.config.hosts import reached_at

    lines = [f"host {host}: {_addresses(config, host)}"]
    named = [(f"{bind.owner} {bind.channel}", bind) for bind in bound]
    width = max((len(what) for what, _ in named), default=0) + 2
    lines.append("  binds" if named else "  binds nothing")
    for what, bind in named:
        at = reached_at(config, bind)
        reached = "" if at == bind.endpoint else f", reached at {at}"
        lines.append(f"    {what:<{width}}{bind.endpoint}{reached}")
    if not reach.routes and not reach.sources:
        lines.append("  reaches nothing (on no group)")
        return lines
    member = f"  reaches, as a member of {', '.join(reach.groups)}"
    if same_as is not None:
        lines.append(f"{member}: what host {same_as} reaches")
        return lines
    lines.append(member)
    for route in reach.routes.values():
        if route.via is None:
            lines.append(f"    node {route.node}: shell {route.shell}, control {route.control}")
        else:
            hops = f"{route.hops} hop{'s' if route.hops > 1 else ''}"
            path = " -> ".join(route.path)
            lines.append(f"    node {route.node}: via {path} ({hops}), request {route.shell}")
    for source in reach.sources:
        names = ", ".join(source.nodes) or "nothing yet"
        via = f" (forwarder {source.via})" if source.via else ""
        lines.append(f"    pub {source.endpoint}{via}: {names}")
    return lines


def run(args: argparse.Namespace) -> int:
    """Check ``args.file``; print the summary (exit 0) or every problem (exit 2)."""
    from rovbus.config import load_system
    from rovbus.errors import ConfigError

    try:
        config = load_system(args.file, check_files=not args.no_key_files)
    except ConfigError as exc:
        print(f"{exc.path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for found in exc.problems:
            print(f"  {found}", file=sys.stderr)
        return EXIT_USAGE
    if args.host is None:
        print("\n".join(summarize(config)))
        return EXIT_OK
    from rovbus.config.hosts import binds
    from rovbus.config.reach import reach_from_host

    try:
        reach = reach_from_host(config, args.host)
    except ConfigError as exc:
        print(f"{exc.path}: {'; '.join(exc.problems)}", file=sys.stderr)
        return EXIT_USAGE
    print(f"system {config.name} ({config.source})")
    print("\n".join(host_view(config, args.host, list(binds(config, args.host)), reach)))
    return EXIT_OK
