"""``rovbus ctl NODE shutdown|interrupt|tx-off|tx-on``: a control request to a node."""

from __future__ import annotations

import argparse
from typing import Any

from rovbus.cli.options import add_connection_args, parser_defaults
from rovbus.exitcodes import EXIT_USAGE

EPILOG = """\
examples:
  rovbus ctl propulsion tx-off          # stop the node transmitting on all its buses
  rovbus ctl propulsion tx-off --reason "leak alarm"
  rovbus ctl propulsion tx-on --reason "leak checked, thrusters clear"
  rovbus ctl propulsion interrupt       # drop frames queued for transmission
  rovbus ctl propulsion shutdown        # stop the daemon (systemd may restart it)

Control requests travel on the node's control channel, which a busy shell never delays.
tx-off first writes the failsafe frames of every bus with a helm (thrusters to 0) and ends
whoever held it; then the node goes quiet. tx-on writes them again.
tx-on needs --reason: the node logs it and publishes it (tx_status on NODE/status) with
who asked, your user name and session; tx-off takes one too, and never fails for it.
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
    p.add_argument(
        "--reason",
        metavar="TEXT",
        help="tx-on (required), tx-off: why, in one line; logged and published by the node",
    )
    add_request_args(p)
    add_connection_args(p)


def run(args: argparse.Namespace) -> int:
    import sys

    from rovbus.cli.req import request_and_print

    content: dict[str, Any] = {}
    if args.action == "shutdown" and args.restart:
        content["restart"] = True
    if args.reason is not None:
        if not args.action.startswith("tx-"):
            print(
                f"rovbus ctl: --reason is for tx-on and tx-off, not {args.action}", file=sys.stderr
            )
            return EXIT_USAGE
        content["reason"] = args.reason
    elif args.action == "tx-on":
        print(
            'rovbus ctl: tx-on needs --reason "..." (why transmit may go on again; the node '
            "logs it and publishes it with who asked)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    return request_and_print(args, "ctl", args.node, ACTIONS[args.action], content, "control")
