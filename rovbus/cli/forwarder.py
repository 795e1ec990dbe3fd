"""``rovbus forwarder``: run one forwarder (a group boundary) of the system file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rovbus.cli.options import add_daemon_args, check_placement, parser_defaults
from rovbus.exitcodes import EXIT_USAGE

EPILOG = """\
examples:
  rovbus forwarder --config config/demo.toml tether
  rovbus forwarder --config /etc/rovbus/vehicle.toml tether --request-timeout 5

The forwarder subscribes to the inner group's nodes for whatever someone outside
subscribed to, and carries requests to them by name. It stops cleanly on SIGTERM or
Ctrl-C. Exit 2: start-up failed (bad system file, the forwarder is on another host, port
in use, bad key file). --host as for `rovbus node`.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "forwarder",
        help="run a forwarder: join an inner group to an outer one (the tether)",
        description="Run one forwarder of the system file: republish the inner group's "
        "topics outside (only what is subscribed), route requests to inner nodes by name, "
        "answer its own control requests.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    add_daemon_args(p, "forwarder")
    p.add_argument(
        "--request-timeout",
        type=float,
        default=3.0,
        metavar="SECONDS",
        help="error reply when a node has not answered a request within this (default 3)",
    )
    p.add_argument(
        "--log-level",
        choices=["debug", "info", "warning", "error"],
        default="info",
        help="log level (default: info)",
    )


def run(args: argparse.Namespace) -> int:
    from rovbus.config import load_system
    from rovbus.daemon.process import run_daemon, setup_logging
    from rovbus.errors import ConfigError
    from rovbus.forwarder import ForwarderDaemon

    if args.request_timeout <= 0:
        print("rovbus forwarder: --request-timeout must be positive", file=sys.stderr)
        return EXIT_USAGE
    try:
        system = load_system(args.config)
        system.forwarder(args.name)
        setup_logging(args.log_level)
        check_placement(system, "forwarders", args.name, args.host)
    except ConfigError as exc:
        print(f"rovbus forwarder: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return run_daemon(
        lambda: ForwarderDaemon(system, args.name, request_timeout=args.request_timeout)
    )
