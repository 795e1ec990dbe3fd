"""``rovbus record FILE [PREFIX ...]``: CAN frames to a python-can log, or every message to .rbl."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import add_connection_args, add_receive_args, parser_defaults
from rovbus.exitcodes import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    import asyncio

    from rovbus.cli.canlog import CanLog
    from rovbus.client import Client, NativeLogWriter, Received

#: writes what one message carries (at most ``remaining`` frames); returns how much
Write = Callable[["Received", "int | None"], int]

EPILOG = """\
examples:
  rovbus record run1.log                       # every node's CAN frames, candump -L format
  rovbus record nav.blf nav/can/can1/ --duration 600
  rovbus record thrusters.asc propulsion/can/ --count 10000
  rovbus record all.rbl                        # every message, exactly as on the wire
  rovbus record big.log --max-bytes 50000000   # rotate: a new file every 50 MB

With --max-bytes, CAN logs (.log .asc .blf .csv .txt) rotate as python-can's
SizedRotatingLogger does (FILE is the live file; full ones are renamed FILE_<time>_#NNN),
.rbl logs continue in FILE.001.rbl, FILE.002.rbl, ...

The extension picks the format: .log (candump -L), .asc, .blf, .csv, .trc, .txt, .db
(python-can's writers; not .mf4, which python-can writes only when it closes) hold CAN
frames, each with its node timestamp, direction and the bus name as channel
(--node-channel: node/bus); .rbl (rovbus native log, see rovbus.client.rbl) holds every
message's envelope frames with their receive times.
Default prefixes: every node's CAN topics (.rbl: everything).

What is received reaches the disk at least every --flush-interval seconds (default 1):
written in whole records and fsynced (.blf: the open container closed; .db: committed).
A kill -9 or a power cut loses at most the frames of that last interval, and the file
still reads (python-can's LogReader, the .rbl reader). Ctrl-C, SIGTERM (a service
stopping) and SIGHUP (a terminal or ssh session closing) close the file properly (the
.blf header written). Exit status: 0 ok, also when stopped by SIGTERM or SIGHUP; 1
--timeout before --count, or the disk refused a write; 2 bad arguments or system file;
130 Ctrl-C, as every rovbus command.
"""

CAN_FORMATS = (".log", ".asc", ".blf", ".csv", ".trc", ".txt", ".db")
#: what python-can's SizedRotatingLogger rotates (--max-bytes)
ROTATING_FORMATS = (".log", ".asc", ".blf", ".csv", ".txt")
DEFAULT_FLUSH_INTERVAL = 1.0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "record",
        help="record CAN frames to a python-can log (.log .asc .blf .csv .trc) or messages to .rbl",
        description="Record CAN frames, or every message, to a file.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("prefixes", nargs="*", metavar="PREFIX")
    p.add_argument("--duration", type=float, metavar="SEC", help="stop after SEC seconds")
    p.add_argument(
        "--max-bytes", type=int, metavar="N", help="rotate to a new file when one reaches N bytes"
    )
    p.add_argument("--node-channel", action="store_true", help="channel node/bus, not bus")
    p.add_argument(
        "--flush-interval",
        type=_positive_seconds,
        default=DEFAULT_FLUSH_INTERVAL,
        metavar="SEC",
        help="put what was received on disk at least every SEC seconds: the most a kill "
        f"or a power cut loses (default {DEFAULT_FLUSH_INTERVAL:g})",
    )
    add_receive_args(p, "frames (.rbl: messages)")
    add_connection_args(p)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds, more than 0")
    return value


class _NativeRotator:
    """A .rbl writer that starts FILE.001.rbl, FILE.002.rbl, ... past ``max_bytes``."""

    def __init__(self, path: Path, max_bytes: int | None, system: str | None, prefixes: list[str]):
        self.path, self.max_bytes, self.system, self.prefixes = path, max_bytes, system, prefixes
        self.index = 0
        self.writer = self._open(path)

    def _open(self, path: Path) -> NativeLogWriter:
        from rovbus.client import NativeLogWriter

        return NativeLogWriter(path, system=self.system, prefixes=self.prefixes)

    def write(self, frames: list[bytes], received: float) -> None:
        if self.max_bytes and self.writer.size >= self.max_bytes:
            self.writer.close()
            self.index += 1
            self.writer = self._open(
                self.path.with_name(f"{self.path.stem}.{self.index:03d}{self.path.suffix}")
            )
        self.writer.write(frames, received)

    def sync(self) -> None:
        self.writer.sync()

    def close(self) -> None:
        self.writer.close()


async def _record(
    receive: Coroutine[Any, Any, int],
    output: _NativeRotator | CanLog,
    interval: float,
    stop: asyncio.Event,
) -> int:
    """Run ``receive`` to its end, syncing ``output`` every ``interval`` seconds, or until
    ``stop`` is set (by SIGTERM or SIGHUP): then 0. A failed sync ends it with its error;
    closing ``output`` (the caller's) syncs what came after the last one."""
    import asyncio

    receiving = asyncio.ensure_future(receive)
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while True:
            await asyncio.wait(
                (receiving, stopping), timeout=interval, return_when=asyncio.FIRST_COMPLETED
            )
            if receiving.done():
                return receiving.result()
            if stop.is_set():
                return EXIT_OK
            output.sync()
    finally:
        receiving.cancel()
        stopping.cancel()
        await asyncio.gather(receiving, stopping, return_exceptions=True)


def _file_problem(path: Path, max_bytes: int | None) -> str | None:
    """Why ``record`` cannot write ``path`` (its extension names the format), or None."""
    suffix = path.suffix.lower()
    if suffix == ".rbl":
        return None
    if suffix not in CAN_FORMATS:
        return f"{path.suffix or 'no extension'}: expected .rbl or one of " + " ".join(CAN_FORMATS)
    if max_bytes and suffix not in ROTATING_FORMATS:
        return f"--max-bytes: {suffix} does not rotate; use .rbl or one of " + " ".join(
            ROTATING_FORMATS
        )
    return None


def _native_writer(rotator: _NativeRotator) -> Write:
    """Every message, whole, into the ``.rbl`` log."""

    def write(got: Received, remaining: int | None) -> int:
        rotator.write(got.frames, got.time)
        return 1

    return write


def _frame_writer(can_log: CanLog, node_channel: bool) -> Write:
    """The CAN frames a message carries into a python-can log (``node_channel``: the
    channel written is ``node/bus``)."""
    from rovbus.cli.output import can_frames
    from rovbus.wire.topics import parse_topic

    def write(got: Received, remaining: int | None) -> int:
        frames = can_frames(got.message)
        if remaining is not None:
            frames = frames[:remaining]
        node = parse_topic(got.message.topic).node if frames and node_channel else ""
        for frame in frames:
            m = frame.to_can_message()
            if not frame.timestamp:
                m.timestamp = got.time
            if node:
                m.channel = f"{node}/{frame.bus}"
            can_log.write(m)
        return len(frames)

    return write


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal
    import sys

    from rovbus.cli.options import joined, receive_loop, run_client

    log = logging.getLogger("rovbus.cli")
    path = Path(args.file)
    native = path.suffix.lower() == ".rbl"
    problem = _file_problem(path, args.max_bytes)
    if problem:
        print(f"rovbus record: {problem}", file=sys.stderr)
        return EXIT_USAGE

    async def body(client: Client) -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        stop_signals = (signal.SIGTERM, signal.SIGHUP)
        for signum in stop_signals:
            loop.add_signal_handler(signum, stop.set)
        try:
            return await record(client, stop)
        finally:
            for signum in stop_signals:
                loop.remove_signal_handler(signum)

    async def record(client: Client, stop: asyncio.Event) -> int:
        if args.prefixes:
            prefixes = list(args.prefixes)
        elif native:
            prefixes = [""]
        else:
            prefixes = [f"{n}/can/" for n in client.routes.nodes] or [""]
        system = client.system.name if client.system is not None else None
        output: _NativeRotator | CanLog
        if native:
            output = _NativeRotator(path, args.max_bytes, system, prefixes)
            write = _native_writer(output)
        else:
            from rovbus.cli.canlog import CanLog

            output = CanLog(path, max_bytes=args.max_bytes, interval=args.flush_interval)
            write = _frame_writer(output, args.node_channel)
        written = 0

        def handle(got: Received, remaining: int | None) -> int:
            nonlocal written
            n = write(got, remaining)
            written += n
            return n

        async def receive() -> int:
            async with client.subscribe(prefixes) as subscription:
                await joined(subscription, "record")
                return await receive_loop(subscription, args, handle, duration=args.duration)

        try:
            code = await _record(receive(), output, args.flush_interval, stop)
            if stop.is_set():
                log.info("stopped by a signal")
            return code
        finally:
            output.close()
            log.info("wrote %d %s to %s", written, "message(s)" if native else "frame(s)", path)

    return run_client(args, "record", body)
