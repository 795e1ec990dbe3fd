"""``rovbus sub [PREFIX ...]``: print the messages whose topic starts with a prefix."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import (
    add_connection_args,
    add_receive_args,
    parser_defaults,
    run_client,
)

if TYPE_CHECKING:
    from rovbus.client import Client, Received, Subscription

EPILOG = """\
examples:
  rovbus sub                                   # everything (pretty on a terminal, else JSON lines)
  rovbus sub propulsion/hb nav/status          # several prefixes at once
  rovbus sub propulsion/can/can0/ -n 10        # ten frames of one bus
  rovbus sub nav/can/ --format candump         # candump -L lines, for can-utils and python-can
  rovbus sub nav/can/can1/09F112 --dbc canboat-nmea2000.dbc   # decoded signals
  rovbus sub --group vehicle --once propulsion/hb --timeout 5 --format jsonl | jq .content

Topics are matched by prefix (ZeroMQ's rule): end a prefix with '/' to stop at a level.
At exit, if messages were lost on the way (gaps in the publishers' per-topic sequence
numbers: this reader or a link fell behind), a line on stderr says how many.
Exit status: 0 ok, 1 --timeout ran out before --count, 2 bad arguments or system file.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sub",
        help="print messages by topic prefix (pretty, candump, JSON lines; DBC decoding)",
        description="Subscribe to topics by prefix and print each message.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("prefixes", nargs="*", metavar="PREFIX", help="topic prefixes (default: all)")
    p.add_argument(
        "--format",
        "-f",
        choices=["pretty", "candump", "jsonl"],
        help="output format (default: pretty on a terminal, else jsonl); candump prints "
        "only CAN frames, as candump -L log lines",
    )
    p.add_argument("--dbc", metavar="FILE", help="decode CAN frames into signals (cantools)")
    p.add_argument(
        "--dbc-pgn",
        action="store_true",
        help="match 29-bit frames to DBC messages by PGN (id & 0x1FFFF00); automatic for "
        "NMEA 2000 / J1939 DBCs",
    )
    add_receive_args(p)
    add_connection_args(p)


def run(args: argparse.Namespace) -> int:
    import logging
    import shutil
    import sys

    from rovbus.cli.options import joined, receive_loop
    from rovbus.cli.output import can_frames, jsonl_line, pretty_line
    from rovbus.wire.cantext import format_candump

    fmt = args.format or ("pretty" if sys.stdout.isatty() else "jsonl")
    width = shutil.get_terminal_size().columns if sys.stdout.isatty() else 0

    async def body(client: Client) -> int:
        decoder = None
        if args.dbc:
            from rovbus.cli.dbc import DbcDecoder

            decoder = DbcDecoder(args.dbc, pgn=True if args.dbc_pgn else None)
        write = sys.stdout.write

        def handle(got: Received, remaining: int | None) -> int:
            msg = got.message
            if fmt == "candump":
                frames = can_frames(msg)
                if remaining is not None:  # a batch may hold more frames than -n wants
                    frames = frames[:remaining]
                for frame in frames:
                    write(format_candump(frame) + "\n")
                    if decoder is not None and (decoded := decoder.decode(frame)):
                        write(f"#  {decoded[0]} {_signals(decoded[1])}\n")
                sys.stdout.flush()
                return len(frames)
            decoded_all: list[dict[str, Any]] = []
            if decoder is not None:
                for frame in can_frames(msg):
                    if (decoded := decoder.decode(frame)) is not None:
                        decoded_all.append({"message": decoded[0], "signals": decoded[1]})
            if fmt == "jsonl":
                extra = {"decoded": decoded_all} if decoded_all else None
                write(jsonl_line(msg, extra) + "\n")
            else:
                write(pretty_line(msg, got.time, width) + "\n")
                for d in decoded_all:
                    write(f"    {d['message']}: {_signals(d['signals'])}\n")
            sys.stdout.flush()
            return 1

        async with client.subscribe(args.prefixes or [""]) as subscription:
            try:
                await joined(subscription, "sub")
                return await receive_loop(subscription, args, handle)
            finally:
                if summary := missed_summary(subscription):
                    logging.getLogger("rovbus.cli").warning("%s", summary)

    return run_client(args, "sub", body)


def missed_summary(subscription: Subscription) -> str | None:
    """A line on what the subscription missed on its prefixes' topics, None if nothing."""
    prefixes = subscription.prefixes
    missed = {t: n for t, n in subscription.missed_topics().items() if t.startswith(prefixes)}
    if not missed:
        return None
    total = sum(missed.values())
    what = f"missed {total} message{'s' if total != 1 else ''}"
    if len(missed) == 1:
        where = f"on {next(iter(missed))}"
    else:
        worst = max(missed, key=lambda t: missed[t])
        where = f"on {len(missed)} topics, most on {worst} ({missed[worst]})"
    return f"{what} {where} (gaps in the publishers' sequence numbers)"


def _signals(values: dict[str, Any]) -> str:
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
