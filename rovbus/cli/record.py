"""``rovbus record FILE [PREFIX ...]``: CAN frames to a python-can log, or every message to .rbl."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import add_connection_args, add_receive_args, parser_defaults

if TYPE_CHECKING:
    from rovbus.client import Client, NativeLogWriter, Received

EPILOG = """\
examples:
  rovbus record run1.log                       # every node's CAN frames, candump -L format
  rovbus record nav.blf nav/can/can1/ --duration 600
  rovbus record thrusters.asc propulsion/can/ --count 10000
  rovbus record all.rbl                        # every message, exactly as on the wire
  rovbus record big.log --max-bytes 50000000   # rotate: a new file every 50 MB

With --max-bytes, CAN logs rotate as python-can's SizedRotatingLogger does (FILE is the
live file; full ones are renamed FILE_<time>_#NNN), .rbl logs continue in FILE.001.rbl,
FILE.002.rbl, ...

The extension picks the format: .log (candump -L), .asc, .blf, .csv, .trc (any format
python-can writes) hold CAN frames, each with its node timestamp, direction and the bus
name as channel (--node-channel: node/bus); .rbl (rovbus native log, see
rovbus.client.rbl) holds every message's envelope frames with their receive times.
Default prefixes: every node's CAN topics (.rbl: everything). Ctrl-C closes the file
properly. Exit status: 0 ok, 1 --timeout before --count, 2 bad arguments or system file.
"""

CAN_FORMATS = (".log", ".asc", ".blf", ".csv", ".trc", ".mf4", ".txt", ".db")


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
    add_receive_args(p, "frames (.rbl: messages)")
    add_connection_args(p)


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

    def close(self) -> None:
        self.writer.close()


def run(args: argparse.Namespace) -> int:
    import logging
    import sys

    from rovbus.cli.options import EXIT_USAGE, joined, receive_loop, run_client
    from rovbus.cli.output import can_frames
    from rovbus.wire.topics import parse_topic

    log = logging.getLogger("rovbus.cli")
    path = Path(args.file)
    native = path.suffix.lower() == ".rbl"
    if not native and path.suffix.lower() not in CAN_FORMATS:
        print(
            f"rovbus record: {path.suffix or 'no extension'}: expected .rbl or one of "
            + " ".join(CAN_FORMATS),
            file=sys.stderr,
        )
        return EXIT_USAGE

    async def body(client: Client) -> int:
        if args.prefixes:
            prefixes = list(args.prefixes)
        elif native:
            prefixes = [""]
        else:
            prefixes = [f"{n}/can/" for n in client.routes.nodes] or [""]
        system = client.system.name if client.system is not None else None
        written = 0
        if native:
            rotator = _NativeRotator(path, args.max_bytes, system, prefixes)

            def handle_native(got: Received, remaining: int | None) -> int:
                nonlocal written
                rotator.write(got.frames, got.time)
                written += 1
                return 1

            try:
                async with client.subscribe(prefixes) as subscription:
                    await joined(subscription, "record")
                    return await receive_loop(
                        subscription, args, handle_native, duration=args.duration
                    )
            finally:
                rotator.close()
                log.info("wrote %d message(s) to %s", written, path)

        import can

        if args.max_bytes:
            logger: Any = can.SizedRotatingLogger(str(path), max_bytes=args.max_bytes)
        else:
            logger = can.Logger(str(path))

        def handle(got: Received, remaining: int | None) -> int:
            nonlocal written
            msg = got.message
            n = 0
            frames = can_frames(msg)
            if not frames:
                return 0
            node = parse_topic(msg.topic).node if args.node_channel else ""
            for frame in frames:
                if remaining is not None and n >= remaining:
                    break
                m = frame.to_can_message()
                if not frame.timestamp:
                    m.timestamp = got.time
                if node:
                    m.channel = f"{node}/{frame.bus}"
                logger.on_message_received(m)
                n += 1
            written += n
            return n

        try:
            async with client.subscribe(prefixes) as subscription:
                await joined(subscription, "record")
                return await receive_loop(subscription, args, handle, duration=args.duration)
        finally:
            logger.stop()
            log.info("wrote %d frame(s) to %s", written, path)

    return run_client(args, "record", body)
