"""``rovbus dump [NODE[/BUS]] [FILTER ...]``: CAN frames like candump, with its filters."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import add_connection_args, add_receive_args, parser_defaults
from rovbus.exitcodes import EXIT_USAGE

if TYPE_CHECKING:
    from rovbus.client import Client, Received
    from rovbus.wire.canframe import CanFrame

EPILOG = """\
examples:
  rovbus dump                                  # every CAN frame of every node
  rovbus dump propulsion/can0                  # one bus
  rovbus dump propulsion 123:7FF 200~700       # ID 0x123, and IDs outside 0x200-0x2FF
  rovbus dump nav/can1 09F11200:1FFFF00        # a PGN (8 digits: 29-bit filter)
  rovbus dump nav -L > nav.log                 # a candump -L log python-can reads
  rovbus dump propulsion '#FFFFFFFF' -t d      # also error frames; delta timestamps
  rovbus dump propulsion -x --origin           # who caused each frame the node sent

Filters as candump takes them: <id>:<mask> passes a frame when id & mask == frame & mask;
<id>~<mask> passes the others; 8-digit id and mask: 29-bit frames only; filters are ORed, or
ANDed with 'j'; #<error mask> passes error frames whose class bits it shares (error
frames are dropped without one). The channel printed is the bus name when a NODE is given,
else node/bus. --origin ends each frame the node transmitted with the request behind it
(username, CURVE key, msg_id; see rovbus txlog). Exit status: 0 ok, 1 --timeout before
--count, 2 bad filter or system file.
"""

CAN_EFF_FLAG = 0x80000000
CAN_RTR_FLAG = 0x40000000
CAN_ERR_FLAG = 0x20000000


@dataclass(frozen=True, slots=True)
class IdFilter:
    can_id: int  # with CAN_EFF_FLAG for an 8-digit (29-bit) filter
    mask: int
    inverse: bool = False

    def passes(self, key: int) -> bool:
        hit = (key & self.mask) == (self.can_id & self.mask)
        return hit != self.inverse


@dataclass(frozen=True, slots=True)
class Filters:
    ids: tuple[IdFilter, ...] = ()
    join: bool = False
    err_mask: int = 0

    def passes(self, frame: CanFrame) -> bool:
        if frame.is_error_frame:
            return bool(frame.arbitration_id & self.err_mask)
        if not self.ids:
            return True
        key = frame.arbitration_id
        if frame.is_extended_id:
            key |= CAN_EFF_FLAG
        if frame.is_remote_frame:
            key |= CAN_RTR_FLAG
        checks = (f.passes(key) for f in self.ids)
        return all(checks) if self.join else any(checks)


def parse_filters(items: list[str]) -> Filters:
    """candump's filter syntax; ValueError naming the bad item."""
    ids: list[IdFilter] = []
    join = False
    err_mask = 0
    for item in items:
        if item == "j":
            join = True
            continue
        try:
            if item.startswith("#"):
                err_mask |= int(item[1:], 16)
                continue
            sep = ":" if ":" in item else "~" if "~" in item else None
            if sep is None:
                raise ValueError("expected <id>:<mask>, <id>~<mask>, #<error mask> or j")
            id_text, mask_text = item.split(sep, 1)
            can_id, mask = int(id_text, 16), int(mask_text, 16)
        except ValueError as exc:
            raise ValueError(f"bad filter {item!r}: {exc}") from None
        mask &= ~CAN_ERR_FLAG
        if len(id_text) == 8:
            can_id |= CAN_EFF_FLAG
            if len(mask_text) == 8:  # both 8 digits: 29-bit frames only, as candump says
                mask |= CAN_EFF_FLAG
        ids.append(IdFilter(can_id, mask, sep == "~"))
    return Filters(tuple(ids), join, err_mask)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "dump",
        help="print CAN frames like candump, with candump's filters",
        description="Print the CAN frames of one node, one bus, or all, as candump does.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("where", nargs="?", default="", metavar="NODE[/BUS]")
    p.add_argument(
        "filters", nargs="*", metavar="FILTER", help="<id>:<mask>, <id>~<mask>, #<err>, j"
    )
    p.add_argument("-L", "--log", action="store_true", help="candump -L log lines")
    p.add_argument(
        "-t",
        "--timestamp",
        choices=["a", "d", "z", "A"],
        help="a: absolute, d: delta, z: from the first frame, A: date and time",
    )
    p.add_argument("-x", "--direction", action="store_true", help="show RX/TX")
    p.add_argument(
        "--origin",
        action="store_true",
        help="end each transmitted frame with who caused it (not with -L)",
    )
    add_receive_args(p, "frames")
    add_connection_args(p)


class CandumpLines:
    """candump's line for each frame: ``-L`` log lines, or its table with the timestamp
    mode ``-t`` (whose ``d`` and ``z`` keep the time of an earlier frame)."""

    def __init__(
        self, log: bool, timestamp: str | None, direction: bool, origin: bool = False
    ) -> None:
        self.log = log
        self.timestamp = timestamp
        self.direction = direction
        #: end each frame the node transmitted with the request behind it (``--origin``)
        self.origin = origin
        self._since: float | None = None

    def line(self, frame: CanFrame, channel: str, received: float) -> str:
        if self.log:
            from rovbus.wire.cantext import format_candump

            return format_candump(frame, channel, with_direction=self.direction)
        direction = f"{frame.direction.upper()} " if self.direction else ""
        if frame.is_extended_id or frame.is_error_frame:
            ident = f"{frame.arbitration_id | (CAN_ERR_FLAG if frame.is_error_frame else 0):08X}"
        else:
            ident = f"{frame.arbitration_id:03X}"
        if frame.is_remote_frame:
            body = f"[{frame.dlc}]  remote request"
        else:
            size = f"[{len(frame.data):02d}]" if frame.is_fd else f"[{len(frame.data)}]"
            body = f"{size}  " + " ".join(f"{b:02X}" for b in frame.data)
        stamp = self._stamp(frame.timestamp or received)
        text = f"{stamp} {direction} {channel}  {ident}   {body}".rstrip()
        if self.origin and frame.origin is not None:
            text += f"   {frame.origin.describe()}"
        return text

    def _stamp(self, ts: float) -> str:
        if self.timestamp == "a":
            return f"({ts:.6f}) "
        if self.timestamp == "A":
            import time

            t = time.localtime(ts)
            return time.strftime("(%Y-%m-%d %H:%M:%S", t) + f".{int(ts % 1 * 1e6):06d}) "
        if self.timestamp in ("d", "z"):
            if self._since is None:
                self._since = ts
            stamp = f"({ts - self._since:.6f}) "
            if self.timestamp == "d":
                self._since = ts
            return stamp
        return ""


def run(args: argparse.Namespace) -> int:
    import sys

    from rovbus.cli.options import joined, receive_loop, run_client
    from rovbus.cli.output import can_frames
    from rovbus.wire.topics import parse_topic

    node, _, bus = args.where.partition("/")
    items = list(args.filters)
    if node and (":" in node or "~" in node or node.startswith("#")):
        items.insert(0, args.where)  # a filter, no NODE given
        node, bus = "", ""
    try:
        filters = parse_filters(items)
    except ValueError as exc:
        print(f"rovbus dump: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.origin and args.log:
        print(
            "rovbus dump: --origin cannot go into candump -L lines (tools read them); "
            "use rovbus txlog NODE, or record an .rbl",
            file=sys.stderr,
        )
        return EXIT_USAGE

    async def body(client: Client) -> int:
        if node:
            prefixes = [f"{node}/can/{bus}" if bus else f"{node}/can/"]
        else:
            prefixes = [f"{n}/can/" for n in client.routes.nodes] or [""]
        lines = CandumpLines(args.log, args.timestamp, args.direction, args.origin)
        write = sys.stdout.write

        def handle(got: Received, remaining: int | None) -> int:
            msg = got.message
            try:
                topic = parse_topic(msg.topic)
            except ValueError:
                return 0
            if topic.kind != "can" or (bus and topic.bus != bus):
                return 0
            channel = (topic.bus or "?") if node else f"{topic.node}/{topic.bus}"
            n = 0
            for frame in can_frames(msg):
                if remaining is not None and n >= remaining:
                    break
                if filters.passes(frame):
                    write(lines.line(frame, channel, got.time) + "\n")
                    n += 1
            if n:
                sys.stdout.flush()
            return n

        async with client.subscribe(prefixes) as subscription:
            await joined(subscription, "dump")
            return await receive_loop(subscription, args, handle)

    return run_client(args, "dump", body)
