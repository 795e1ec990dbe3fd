"""``rovbus node``: run one node daemon of the system file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

EPILOG = """\
examples:
  rovbus node --config config/demo.toml propulsion
  rovbus node --config /etc/rovbus/vehicle.toml navigation --log-level debug

The daemon stops cleanly on SIGTERM or Ctrl-C. Exit 2: start-up failed (bad system
file, port in use, a bus that cannot open); the message names the cause.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "node",
        help="run a node daemon: its CAN buses onto the bus",
        description="Run one node of the system file: bind its sockets, open its CAN buses, "
        "publish frames and heartbeats, answer requests.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="the node's name in the system file")
    p.add_argument("--config", "-c", required=True, metavar="FILE", help="the system file")
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="log level (default: the node's log_level in the system file, else info)",
    )


def run(args: argparse.Namespace) -> int:
    from rovbus.config import load_system
    from rovbus.errors import ConfigError
    from rovbus.node.daemon import NodeDaemon
    from rovbus.node.process import run_daemon, setup_logging

    try:
        system = load_system(args.config)
        node = system.node(args.name)
    except ConfigError as exc:
        print(f"rovbus node: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.log_level or node.log_level or "info")
    return run_daemon(lambda: NodeDaemon(system, args.name))
