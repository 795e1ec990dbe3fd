"""``rovbus node``: run one node daemon of the system file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rovbus.cli.options import add_daemon_args, check_placement, parser_defaults
from rovbus.exitcodes import EXIT_USAGE

EPILOG = """\
examples:
  rovbus node --config config/demo.toml propulsion
  rovbus node --config /etc/rovbus/vehicle.toml navigation --log-level debug
  rovbus node --config /etc/rovbus/vehicle.toml --host main propulsion

When the node's buses list simulated `devices`, the node runs them in its own process
(python-can's virtual bus is in-process only) and answers fault-injection requests
(`rovbus sim fault ...`); --no-devices leaves the devices to `rovbus sim devices`.

The daemon stops cleanly on SIGTERM or Ctrl-C. Exit 2: start-up failed (bad system
file, the node is on another host, port in use, a bus that cannot open); the message
names the cause. With [hosts] in the file, `--host main` (or $ROVBUS_HOST, or this
machine's hostname) says which computer this is: a node the file puts on another host
does not start here.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "node",
        help="run a node daemon: its CAN buses onto the bus",
        description="Run one node of the system file: bind its sockets, open its CAN buses, "
        "publish frames and heartbeats, answer requests.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    add_daemon_args(p, "node")
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        help="log level (default: the node's log_level in the system file, else info)",
    )
    p.add_argument(
        "--no-devices",
        action="store_true",
        help="do not run the simulated devices of the node's buses here (they run as their "
        "own process: rovbus sim devices); fault injection stays on",
    )


def run(args: argparse.Namespace) -> int:
    from rovbus.config import load_system
    from rovbus.daemon.process import run_daemon, setup_logging
    from rovbus.errors import ConfigError
    from rovbus.node.daemon import NodeDaemon

    try:
        system = load_system(args.config)
        node = system.node(args.name)
        setup_logging(args.log_level or node.log_level or "info")
        check_placement(system, "nodes", args.name, args.host)
    except ConfigError as exc:
        print(f"rovbus node: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if any(bus.devices for bus in node.buses):
        from rovbus.sim.simnode import SimNode

        devices = not args.no_devices
        return run_daemon(lambda: SimNode(system, args.name, devices=devices))
    return run_daemon(lambda: NodeDaemon(system, args.name))
