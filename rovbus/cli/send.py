"""``rovbus send NODE BUS FRAME ...``: transmit CAN frames (cansend syntax) through a node."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import add_connection_args, parser_defaults, run_client
from rovbus.exitcodes import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from rovbus.client import Client

EPILOG = """\
examples:
  rovbus send propulsion can0 123#DEADBEEF
  rovbus send propulsion can0 1F334455#11.22.33 123#R 123#R4
  rovbus send nav can1 123##1AABB              # CAN FD with bitrate switch (an FD bus)

Frames use cansend's syntax: 3 hex digits for an 11-bit ID, 8 for 29-bit; '.' may separate
bytes; R for a remote frame (optionally its length); '##' and a flags nibble for CAN FD.
The node checks each frame's ID, in its format, against the bus's tx_allow list (an
8-digit ID is 29-bit: 00000201 is allowed only by an ext: entry); all are sent or none.
Frames to a bus's helm IDs (thruster setpoints) need the helm: rovbus helm NODE BUS;
its failsafe frames (an all-stop) never do.
Exit status: 0 sent, 1 refused or no reply, 2 bad frame text or system file.
"""


def add_parser(sub: Any) -> None:
    from rovbus.cli.req import add_request_args

    p = sub.add_parser(
        "send",
        help="transmit CAN frames through a node (cansend syntax)",
        description="Transmit CAN frames on a bus of a node, in order.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("node", metavar="NODE")
    p.add_argument("bus", metavar="BUS")
    p.add_argument("frames", nargs="+", metavar="FRAME")
    add_request_args(p)
    add_connection_args(p)


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    from rovbus.errors import FrameSyntaxError
    from rovbus.wire.cantext import parse_cansend

    for text in args.frames:  # check locally first: a typo is a usage error
        try:
            parse_cansend(text, args.bus)
        except FrameSyntaxError as exc:
            print(f"rovbus send: {exc}", file=sys.stderr)
            return EXIT_USAGE

    async def body(client: Client) -> int:
        sent = await client.send_frames(
            args.node, args.bus, list(args.frames), timeout=args.timeout, retries=args.retries
        )
        logging.getLogger("rovbus.cli").info("%s/%s: sent %d frame(s)", args.node, args.bus, sent)
        return EXIT_OK

    return run_client(args, "send", body)
