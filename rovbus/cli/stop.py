"""``rovbus stop [NODE ...]``: every node (or those named) writes its failsafe frames now."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import add_connection_args, parser_defaults, run_client
from rovbus.exitcodes import EXIT_FAILURE, EXIT_OK

if TYPE_CHECKING:
    from rovbus.client import Client

EPILOG = """\
examples:
  rovbus stop                                  # every node this client reaches
  rovbus stop propulsion --reason "diver in the water"

Any operator may stop: it needs no helm. Each node drops the frames queued on its helm
buses, writes their failsafe frames (e.g. zero thrust) and ends whoever held the helm,
who is told so on its next frame. A node without a helm answers with nothing to do.
Exit status: 0 every node answered, 1 one did not, 2 bad arguments or system file.
"""


def add_parser(sub: Any) -> None:
    from rovbus.cli.req import add_request_args

    p = sub.add_parser(
        "stop",
        help="make every node (or NODE ...) write its failsafe frames now",
        description="Stop the actuators: each node writes the failsafe frames of its helm buses.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("nodes", nargs="*", metavar="NODE", help="default: every node reached")
    p.add_argument("--reason", metavar="TEXT", default="", help="why; the holder is told it")
    add_request_args(p, timeout=1.0)
    add_connection_args(p)


def run(args: argparse.Namespace) -> int:
    async def body(client: Client) -> int:
        import asyncio
        import sys

        from rovbus.cli.helm import status_lines

        nodes = list(args.nodes) or sorted(client.routes.nodes)
        content = {"reason": args.reason} if args.reason else {}
        replies = await asyncio.gather(
            *(
                client.request(
                    node,
                    "stop",
                    content,
                    channel="control",
                    timeout=args.timeout,
                    retries=args.retries,
                )
                for node in nodes
            ),
            return_exceptions=True,
        )
        failed = 0
        for node, reply in zip(nodes, replies, strict=True):
            if isinstance(reply, BaseException):
                if not isinstance(reply, Exception):
                    raise reply
                failed += 1
                print(f"rovbus stop: {node}: {reply}", file=sys.stderr)
                continue
            print("\n".join(status_lines(node, reply.content.get("buses", {}))))
        return EXIT_FAILURE if failed else EXIT_OK

    return run_client(args, "stop", body)
