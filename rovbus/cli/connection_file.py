"""``rovbus connection-file --config FILE NAME``: print a node's Jupyter connection file."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import default_config, parser_defaults, run_client
from rovbus.exitcodes import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from rovbus.client import Client

EPILOG = """\
examples:
  rovbus connection-file --config config/demo.toml propulsion > propulsion.json
  jupyter console --existing ./propulsion.json       # the node's diagnostic console

The node must have an `iopub` endpoint, and its five Jupyter channels must share one host
(tcp) or one path prefix (ipc). On a signed system the file holds the key of the node's
current start, which the command learns from the node's heartbeat (so the node must be
running and reachable from the group): the file works until the node restarts, and only
with that node. Keep it private.
Exit status: 0 printed, 1 no heartbeat from the node, 2 no such node, no iopub, or a bad
system file.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "connection-file",
        help="print a node's Jupyter connection file (JSON)",
        description="Print the Jupyter connection file of a node, for jupyter console.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("name", metavar="NAME", help="the node")
    p.add_argument(
        "--config", "-c", metavar="FILE", help="the system file (default: $ROVBUS_CONFIG)"
    )
    p.add_argument(
        "--group",
        "-g",
        metavar="NAME",
        help="hear the node's heartbeat as a member of this group (signed systems; default "
        "as for the other commands)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        metavar="SEC",
        help="wait this long for the node's heartbeat (signed systems; default 5)",
    )


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from rovbus.config import load_system
    from rovbus.config.reach import node_endpoints
    from rovbus.errors import ConfigError
    from rovbus.node.connection_file import connection_info_for

    try:
        system = load_system(args.config or default_config())
        node = system.node(args.name)
        if node.endpoints.iopub is None:
            raise ConfigError(
                str(system.source),
                [f"nodes.{args.name}.endpoints: no iopub endpoint, so no Jupyter connection file"],
            )
        scheme = system.security.signature_scheme if system.security else "hmac-sha256"
        endpoints = node_endpoints(system, args.name)
        connection_info_for(endpoints, key=b"", signature_scheme=scheme)
    except (ConfigError, ValueError) as exc:
        print(f"rovbus connection-file: {exc}", file=sys.stderr)
        return EXIT_USAGE

    async def body(client: Client) -> int:
        client.routes.route(args.name)  # ConfigError when the group cannot reach it
        key = (await client.codec_for(args.name, args.timeout)).key
        info = connection_info_for(endpoints, key=key, signature_scheme=scheme)
        print(json.dumps(info, indent=2))
        return EXIT_OK

    return run_client(args, "connection-file", body)
