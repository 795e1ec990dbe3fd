"""``rovbus ctl NODE shutdown|interrupt|tx-off|tx-on``: a control request to a node."""

from __future__ import annotations

import argparse
from typing import Any

from rovbus.cli.options import add_connection_args, parser_defaults

EPILOG = """\
examples:
  rovbus ctl propulsion tx-off          # stop the node transmitting on all its buses
  rovbus ctl propulsion tx-on
  rovbus ctl propulsion interrupt       # drop frames queued for transmission
  rovbus ctl propulsion shutdown        # stop the daemon (systemd may restart it)

Control requests travel on the node's control channel, which a busy shell never delays.
Exit status: 0 ok, 1 no reply or an error reply, 2 bad arguments or system file.
"""

ACTIONS = {
    "shutdown": "shutdown_request",
    "interrupt": "interrupt_request",
    "tx-off": "tx_off_request",
    "tx-on": "tx_on_request",
}


def add_parser(sub: Any) -> None:
    from rovbus.cli.req import add_request_args

    p = sub.add_parser(
        "ctl",
        help="control a node: shutdown, interrupt, tx-off, tx-on",
        description="Send a request on a node's control channel and print the reply.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("node", metavar="NODE")
    p.add_argument("action", choices=list(ACTIONS), metavar="ACTION", help=", ".join(ACTIONS))
    p.add_argument("--restart", action="store_true", help="shutdown: ask for a restart")
    add_request_args(p)
    add_connection_args(p)


def run(args: argparse.Namespace) -> int:
    from rovbus.cli.req import request_and_print

    content = {"restart": True} if args.action == "shutdown" and args.restart else {}
    return request_and_print(args, "ctl", args.node, ACTIONS[args.action], content, "control")
