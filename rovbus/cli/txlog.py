"""``rovbus txlog NODE [BUS]``: the last frames a node transmitted, and who caused each."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import add_connection_args, parser_defaults, run_client
from rovbus.exitcodes import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from rovbus.client import Client

EPILOG = """\
examples:
  rovbus txlog propulsion                      # every frame the node keeps, oldest first
  rovbus txlog propulsion can0 -n 20           # the newest 20 of one bus
  rovbus txlog propulsion --json | jq .origin  # one JSON object per frame

Each line is a candump -L line and where the frame came from: the username of the
request (what the client claims: anyone holding the system key can sign any name), the
CURVE key it crossed the tether with (authenticated by the forwarder), the request's
msg_id; or "by node NAME" and why, for a frame the node wrote itself. The node keeps the
last nodes.NAME.tx_log frames (default 1000) and answers with the newest 4096 at most.
Exit status: 0 ok, 1 no reply or an error reply, 2 bad arguments or system file.
"""


def add_parser(sub: Any) -> None:
    from rovbus.cli.req import add_request_args

    p = sub.add_parser(
        "txlog",
        help="the frames a node transmitted, and the request behind each",
        description="Print the last frames a node transmitted, each with its origin.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("node", metavar="NODE")
    p.add_argument("bus", nargs="?", metavar="BUS", help="one bus (default: every bus)")
    p.add_argument(
        "-n", "--limit", type=int, metavar="N", help="the newest N frames only (at most 4096)"
    )
    p.add_argument("--json", action="store_true", help="one JSON object per frame")
    add_request_args(p)
    add_connection_args(p)


def run(args: argparse.Namespace) -> int:
    import sys

    from rovbus.cli.output import to_json
    from rovbus.node.txlog import REPLY_MAX
    from rovbus.wire.cantext import format_candump

    if args.limit is not None and not 1 <= args.limit <= REPLY_MAX:
        print(f"rovbus txlog: -n must be 1 to {REPLY_MAX}, not {args.limit}", file=sys.stderr)
        return EXIT_USAGE

    async def body(client: Client) -> int:
        frames = await client.tx_log(
            args.node, args.bus, limit=args.limit, timeout=args.timeout, retries=args.retries
        )
        for frame in frames:
            if args.json:
                print(to_json(frame.to_content()))
            else:
                origin = frame.origin.describe() if frame.origin is not None else "origin unknown"
                print(f"{format_candump(frame)}  {origin}")
        return EXIT_OK

    return run_client(args, "txlog", body)
