"""``rovbus req NODE TYPE [JSON]``: send a shell request to a node and print the reply."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import add_connection_args, json_object, parser_defaults, run_client
from rovbus.exitcodes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from rovbus.client import Client

EPILOG = """\
examples:
  rovbus req propulsion node_info
  rovbus req propulsion stats | jq .buses
  rovbus req propulsion can_send '{"bus": "can0", "frames": ["123#DEADBEEF"]}'
  rovbus req propulsion execute '{"code": "status"}'

TYPE may leave out "_request". The reply's content is printed as JSON (bytes as hex).
Exit status: 0 ok, 1 no reply (after the retries) or an error reply, 2 bad arguments.
"""


def add_request_args(p: argparse.ArgumentParser, timeout: float = 3.0) -> None:
    p.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        metavar="SEC",
        help=f"per attempt (default {timeout:g})",
    )
    p.add_argument("--retries", type=int, default=2, metavar="N", help="retries (default 2)")
    p.add_argument("--full", action="store_true", help="print the whole reply (header too)")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "req",
        help="send a shell request to a node, print the reply",
        description="Send a request on a node's shell channel and print the reply's content.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("node", metavar="NODE")
    p.add_argument("msg_type", metavar="TYPE", help="e.g. node_info, stats, can_send, execute")
    p.add_argument("content", nargs="?", default="{}", metavar="JSON", help="content (an object)")
    add_request_args(p)
    add_connection_args(p)


def print_reply(reply: Any, full: bool) -> None:
    from rovbus.cli.output import to_json

    if full:
        record = {
            "header": reply.header,
            "parent_header": reply.parent_header,
            "metadata": reply.metadata,
            "content": reply.content,
        }
        print(to_json(record, indent=2), flush=True)
    else:
        print(to_json(reply.content, indent=2), flush=True)


def request_and_print(
    args: argparse.Namespace,
    command: str,
    node: str,
    msg_type: str,
    content: dict[str, Any],
    channel: str,
) -> int:
    import sys

    async def body(client: Client) -> int:
        reply = await client.request(
            node,
            msg_type,
            content,
            channel=channel,
            timeout=args.timeout,
            retries=args.retries,
            check=False,
        )
        print_reply(reply, args.full)
        if reply.content.get("status") == "error":
            c = reply.content
            print(f"rovbus {command}: {node}: {c.get('ename')}: {c.get('evalue')}", file=sys.stderr)
            return EXIT_FAILURE
        return EXIT_OK

    return run_client(args, command, body)


def run(args: argparse.Namespace) -> int:
    content = json_object(args.content, "req")
    if content is None:
        return EXIT_USAGE
    return request_and_print(args, "req", args.node, args.msg_type, content, "shell")
