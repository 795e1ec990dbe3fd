"""``rovbus play FILE --node NODE --bus BUS``: transmit a recorded CAN log through a node.

``rovbus play FILE.rbl --bind ENDPOINT`` republishes a native log instead.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import add_connection_args, parser_defaults
from rovbus.exitcodes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    import zmq

    from rovbus.client import Client
    from rovbus.wire.canframe import CanFrame

EPILOG = """\
examples:
  rovbus play run1.log --node propulsion --bus can0              # original timing
  rovbus play nav.trc --node nav --bus can1 --rate 2             # twice as fast
  rovbus play burst.log --node nav --bus can1 --no-timing --loop # flat out, forever
  rovbus play all.rbl --bind tcp://127.0.0.1:5600                # republish a native log
  rovbus sub --connect tcp://127.0.0.1:5600                      # ... and watch it

Any format python-can reads (.log candump -L, .asc, .blf, .csv, .trc, ...). Frames go to
the node in can_send requests of up to --chunk frames that fall due together, in order;
the node checks each ID, in its format (11-bit or 29-bit, as recorded), against the bus's
tx_allow list. Frames no CAN controller can carry (more than 8 data bytes on a classic
frame, say) and error frames are skipped and counted. A progress line shows on a
terminal. A .rbl replay sends the recorded bytes as they are: subscribers accept them only
with the recorder's key, and a signed log replays once per subscriber (the replay guard).
Exit status: 0 ok, 1 a refused frame or no reply, 2 bad arguments, file or system file.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "play",
        help="transmit a CAN log through a node (or republish a .rbl log)",
        description="Replay a recorded CAN log through a node, with its original timing.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--node", metavar="NODE", help="the node that transmits (CAN logs)")
    p.add_argument("--bus", metavar="BUS", help="the node's bus (CAN logs)")
    p.add_argument("--rate", type=float, default=1.0, metavar="F", help="speed factor (2: twice)")
    p.add_argument("--loop", action="store_true", help="start over at the end, until Ctrl-C")
    p.add_argument("--no-timing", action="store_true", help="send as fast as the node takes them")
    p.add_argument("--chunk", type=int, default=64, metavar="N", help="frames per request (64)")
    p.add_argument("--bind", metavar="ENDPOINT", help=".rbl: bind the PUB socket here")
    p.add_argument(
        "--wait", type=float, default=0.5, metavar="SEC", help=".rbl: wait for subscribers (0.5)"
    )
    p.add_argument("--timeout", type=float, default=5.0, metavar="SEC", help="per request (5)")
    add_connection_args(p)


class Progress:
    """A progress line on stderr, only on a terminal, at most 10 times a second."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.enabled = sys.stderr.isatty()
        self.last = 0.0
        self.start = time.monotonic()

    def show(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 0.1):
            return
        self.last = now
        pct = 100.0 * done / self.total if self.total else 100.0
        width = 30
        bar = "#" * int(width * pct / 100)
        sys.stderr.write(
            f"\r[{bar:<{width}}] {done}/{self.total} frames {pct:5.1f}%  {now - self.start:6.1f} s"
        )
        sys.stderr.flush()

    def end(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def load_frames(path: str, bus: str) -> tuple[list[CanFrame], int, int]:
    """(frames to send, skipped invalid, skipped error frames) of a python-can log."""
    import can

    from rovbus.wire.canframe import CanFrame

    frames: list[CanFrame] = []
    invalid = errors = 0
    for msg in can.LogReader(path):
        if msg.is_error_frame:
            errors += 1
            continue
        try:
            frames.append(CanFrame.from_can_message(msg, bus, "tx"))
        except ValueError:
            invalid += 1
    return frames, invalid, errors


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rovbus.cli.options import run_client

    if args.rate <= 0 or args.chunk < 1:
        print("rovbus play: --rate and --chunk must be positive", file=sys.stderr)
        return EXIT_USAGE
    if not Path(args.file).is_file():
        print(f"rovbus play: {args.file}: no such file", file=sys.stderr)
        return EXIT_USAGE
    from rovbus.client import is_native_log

    if is_native_log(args.file):
        return _play_native(args)
    if not args.node or not args.bus:
        print("rovbus play: a CAN log needs --node and --bus", file=sys.stderr)
        return EXIT_USAGE

    async def body(client: Client) -> int:
        import logging

        log = logging.getLogger("rovbus.cli")
        try:
            frames, invalid, errors = load_frames(args.file, args.bus)
        except Exception as exc:  # python-can raises assorted errors for a bad file
            print(f"rovbus play: {args.file}: cannot read: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if invalid or errors:
            log.warning(
                "skipped %d frame(s) no CAN controller can carry and %d error frame(s)",
                invalid,
                errors,
            )
        progress = Progress(len(frames))
        sent_total = 0

        async def send(chunk: list[CanFrame]) -> int:
            return await client.send_frames(args.node, args.bus, chunk, timeout=args.timeout)

        try:
            while True:
                sent_total += await _send_pass(frames, send, args, progress)
                if not args.loop:
                    break
        finally:
            progress.end()
            log.info("sent %d frame(s) through %s/%s", sent_total, args.node, args.bus)
        return EXIT_OK

    return run_client(args, "play", body)


async def _send_pass(
    frames: list[CanFrame],
    send: Callable[[list[CanFrame]], Awaitable[int]],
    args: argparse.Namespace,
    progress: Progress,
) -> int:
    """Send ``frames`` once, at ``--rate`` times their pace (or at once, ``--no-timing``),
    up to ``--chunk`` of them per request when they are due within 2 ms; returns how many
    went on the wire."""
    import asyncio

    loop = asyncio.get_running_loop()
    start = loop.time()
    t0 = frames[0].timestamp if frames else 0.0
    rate: float = args.rate

    def due(k: int) -> float:
        return start + (frames[k].timestamp - t0) / rate

    sent = i = 0
    while i < len(frames):
        if not args.no_timing and (wait := due(i) - loop.time()) > 0:
            await asyncio.sleep(wait)
        j = i + 1
        horizon = loop.time() + 0.002
        while j < len(frames) and j - i < args.chunk and (args.no_timing or due(j) <= horizon):
            j += 1
        sent += await send(frames[i:j])
        i = j
        progress.show(i)
    progress.show(len(frames), force=True)
    return sent


async def _republish(
    sock: zmq.Socket[Any], messages: list[tuple[float, list[bytes]]], args: argparse.Namespace
) -> int:
    """Publish the messages of a ``.rbl`` log on ``sock`` after ``--wait`` seconds, at
    ``--rate`` times their pace, once or (``--loop``) forever; returns how many went out."""
    import asyncio

    from rovbus.transport.sendnow import send_now

    progress = Progress(len(messages))
    await asyncio.sleep(args.wait)
    loop = asyncio.get_running_loop()
    sent = 0
    try:
        while True:
            start = loop.time()
            t0 = messages[0][0] if messages else 0.0
            for k, (t, frames) in enumerate(messages):
                if not args.no_timing:
                    wait = start + (t - t0) / args.rate - loop.time()
                    if wait > 0:
                        await asyncio.sleep(wait)
                sent += send_now(sock, frames)
                progress.show(k + 1)
            progress.show(len(messages), force=True)
            if not args.loop:
                return sent
    finally:
        progress.end()


def _play_native(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    import zmq

    from rovbus.cli.options import bound_pub, setup_logging
    from rovbus.client import read_native_log
    from rovbus.errors import NativeLogError

    setup_logging(args, "play")
    log = logging.getLogger("rovbus.cli")
    if not args.bind:
        print("rovbus play: a .rbl log is republished: give --bind ENDPOINT", file=sys.stderr)
        return EXIT_USAGE
    try:
        header, records = read_native_log(args.file)
        messages = list(records)
    except NativeLogError as exc:
        print(f"rovbus play: {exc}", file=sys.stderr)
        return EXIT_USAGE
    bound = bound_pub(args.bind, "play", sndhwm=100_000)
    if bound is None:
        return EXIT_USAGE
    ctx, sock = bound
    print(
        f"rovbus play: publishing {len(messages)} message(s) on "
        f"{sock.getsockopt_string(zmq.LAST_ENDPOINT)}",
        file=sys.stderr,
    )
    try:
        sent = asyncio.run(_republish(sock, messages, args))
        log.info("published %d message(s) of system %s", sent, header.get("system"))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        sock.close(1000)
        ctx.term()
    return EXIT_OK
