"""``rovbus connection-file --config FILE NAME``: print a node's Jupyter connection file."""

from __future__ import annotations

import argparse
from typing import Any

from rovbus.cli.options import EXIT_OK, EXIT_USAGE, default_config, parser_defaults

EPILOG = """\
examples:
  rovbus connection-file --config config/demo.toml propulsion > propulsion.json
  jupyter console --existing ./propulsion.json       # the node's diagnostic console

The node must have an `iopub` endpoint, and its five Jupyter channels must share one host
(tcp) or one path prefix (ipc). The file holds the HMAC key: keep it private.
Exit status: 0 printed, 2 no such node, no iopub, or a bad system file.
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


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from rovbus.config import load_system
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
        security = system.security
        info = connection_info_for(
            dict(node.endpoints.items()),
            key=system.hmac_key(),
            signature_scheme=security.signature_scheme if security else "hmac-sha256",
        )
    except (ConfigError, ValueError) as exc:
        print(f"rovbus connection-file: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(json.dumps(info, indent=2))
    return EXIT_OK
