"""``rovbus check-config FILE``: load a system file, report every problem or summarize it.

Exit status 0 when the file is sound (a summary goes to stdout), 2 when it is not (every
problem goes to stderr, each naming its key path). Only argparse is imported at module
level; the config layer (and pydantic with it) loads when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rovbus.config import BusConfig, SystemConfig

EXIT_OK = 0
EXIT_INVALID = 2

EPILOG = """\
examples:
  rovbus check-config config/demo.toml
  rovbus check-config /etc/rovbus/vehicle.toml
  rovbus check-config --no-key-files /etc/rovbus/vehicle.toml   # on a laptop without the keys

exit status: 0 when the file is sound, 2 when it has problems (all listed on stderr)
"""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``check-config`` command to the ``rovbus`` parser."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "check-config",
        help="check a system file and summarize it",
        description=(
            "Load a system file, run every check, and print a summary of its groups, "
            "nodes, buses, endpoints and forwarders, or every problem found."
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
            lines.append(f"  node {node.name}")
            for bus in node.buses:
                lines.append(f"    bus {_bus_line(bus)}")
                lines += [f"      {line}" for line in _tx_allow_lines(bus)]
            if not node.buses:
                lines.append("    (no buses)")
            lines += [f"    {ch:<8}{ep}" for ch, ep in node.endpoints.items()]
    for fwd in config.forwarders.values():
        lines.append(f"forwarder {fwd.name}: {fwd.inner} -> {fwd.outer}")
        lines += [f"  {ch:<8}{ep}" for ch, ep in fwd.endpoints.items()]
    lines.append(
        f"ok: {len(config.groups)} group(s), {len(config.nodes)} node(s), "
        f"{sum(len(n.buses) for n in config.nodes.values())} bus(es), "
        f"{len(config.forwarders)} forwarder(s)"
    )
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
        return EXIT_INVALID
    print("\n".join(summarize(config)))
    return EXIT_OK
