"""What ``rovbus hz`` and ``rovbus bw`` share: per-topic statistics over a sliding window.

Like ``ros2 topic hz``/``bw``: each topic keeps its last ``window`` arrivals (receive time,
size in bytes on the wire, and CAN frames carried: 1 for a ``can_frame``, the batch's count
for a ``can_batch``); a report prints one line per topic.
"""

from __future__ import annotations

import argparse
import itertools
import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import add_connection_args, parser_defaults
from rovbus.exitcodes import EXIT_FAILURE, EXIT_OK

if TYPE_CHECKING:
    from rovbus.client import Client, Received
    from rovbus.wire.message import Message

__all__ = ["TopicWindow", "add_rate_parser", "run_rates"]


@dataclass(slots=True)
class TopicWindow:
    size: int
    times: deque[float] = field(default_factory=deque)
    sizes: deque[int] = field(default_factory=deque)
    frames: deque[int] = field(default_factory=deque)
    total: int = 0
    batched: bool = False  # has carried a can_batch

    def add(self, t: float, nbytes: int, frames: int = 0, batch: bool = False) -> None:
        self.times.append(t)
        self.sizes.append(nbytes)
        self.frames.append(frames)
        self.total += 1
        self.batched = self.batched or batch
        while len(self.times) > self.size:
            self.times.popleft()
            self.sizes.popleft()
            self.frames.popleft()

    def frame_rate(self) -> float | None:
        """CAN frames a second over the window (the frames that came after its first
        arrival, over the time since), or None with fewer than 2 arrivals."""
        if len(self.times) < 2:
            return None
        span = self.times[-1] - self.times[0]
        carried = sum(self.frames) - self.frames[0]
        return carried / span if span > 0 else math.inf

    def hz(self) -> tuple[float, float, float, float] | None:
        """(rate, min gap, max gap, std dev of gaps) or None with fewer than 2 arrivals."""
        t = list(self.times)
        if len(t) < 2:
            return None
        gaps = [b - a for a, b in itertools.pairwise(t)]
        mean = sum(gaps) / len(gaps)
        std = math.sqrt(sum((g - mean) ** 2 for g in gaps) / len(gaps))
        return (1.0 / mean if mean > 0 else math.inf), min(gaps), max(gaps), std

    def bw(self, now: float) -> tuple[float, float, int, int] | None:
        """(bytes/s, mean size, min size, max size) over the window, None when empty."""
        if not self.times:
            return None
        span = now - self.times[0]
        sizes = list(self.sizes)
        rate = sum(sizes) / span if span > 0 else 0.0
        return rate, sum(sizes) / len(sizes), min(sizes), max(sizes)


def _frames_carried(message: Message) -> tuple[int, bool]:
    """(CAN frames in ``message``, whether it is a batch)."""
    if message.msg_type == "can_frame":
        return 1, False
    if message.msg_type == "can_batch":
        frames = message.content.get("frames")
        return (len(frames) if isinstance(frames, list) else 0), True
    return 0, False


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1000:
            return f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} GB"


def add_rate_parser(sub: Any, name: str, help_text: str, epilog: str) -> None:
    p = sub.add_parser(
        name,
        help=help_text,
        description=help_text + ", per topic.",
        epilog=epilog,
        **parser_defaults(),
    )
    p.add_argument("prefixes", nargs="+", metavar="PREFIX")
    p.add_argument(
        "--window", "-w", type=int, default=100, metavar="N", help="messages per topic (100)"
    )
    p.add_argument("--period", type=float, default=1.0, metavar="SEC", help="report every SEC (1)")
    p.add_argument("-n", "--count", type=int, metavar="N", help="stop after N reports")
    p.add_argument("--once", action="store_true", help="one report, then stop")
    p.add_argument(
        "--timeout", type=float, metavar="SEC", help="exit 1 if nothing arrives within SEC seconds"
    )
    p.add_argument("--json", action="store_true", help="JSON lines instead of a table")
    add_connection_args(p)


def hz_line(topic: str, w: TopicWindow, lost: int, as_json: bool) -> str:
    """One topic's line of an ``hz`` report; ``lost``: messages missed on it."""
    h = w.hz()
    fps = w.frame_rate() if w.batched else None
    if as_json:
        import json

        return json.dumps(
            {
                "topic": topic,
                "rate": h and h[0],
                "min": h and h[1],
                "max": h and h[2],
                "std": h and h[3],
                "window": len(w.times),
                "missed": lost,
                "frames_per_s": fps,
            }
        )
    if h is None:
        return f"{topic}  (1 message)" + (f"  missed {lost}" if lost else "")
    return (
        f"{topic}  {h[0]:9.3f} Hz  min {h[1]:.4f}s  max {h[2]:.4f}s  "
        f"std {h[3]:.5f}s  window {len(w.times)}"
        + (f"  ({fps:,.1f} frames/s)" if fps is not None else "")
        + (f"  missed {lost}" if lost else "")
    )


def bw_line(topic: str, w: TopicWindow, now: float, as_json: bool) -> str | None:
    """One topic's line of a ``bw`` report (None while its window has too few messages)."""
    b = w.bw(now)
    if b is None:
        return None
    if as_json:
        import json

        return json.dumps(
            {
                "topic": topic,
                "bytes_per_s": b[0],
                "mean": b[1],
                "min": b[2],
                "max": b[3],
                "window": len(w.times),
            }
        )
    return (
        f"{topic}  {_bytes(b[0])}/s  mean {_bytes(b[1])}  min {b[2]} B  "
        f"max {b[3]} B  window {len(w.times)}"
    )


def run_rates(args: argparse.Namespace, command: str) -> int:
    import asyncio
    import logging
    import sys
    import time

    from rovbus.cli.options import joined, run_client

    log = logging.getLogger("rovbus.cli")
    reports = 1 if args.once else args.count

    def report(windows: dict[str, TopicWindow], now: float, missed: dict[str, int]) -> None:
        if command == "hz":
            lines = [hz_line(t, windows[t], missed.get(t, 0), args.json) for t in sorted(windows)]
        else:
            bw = (bw_line(t, windows[t], now, args.json) for t in sorted(windows))
            lines = [line for line in bw if line is not None]
        sys.stdout.write("\n".join(lines) + ("\n" if args.json else "\n\n"))
        sys.stdout.flush()

    async def body(client: Client) -> int:
        windows: dict[str, TopicWindow] = {}
        async with client.subscribe(args.prefixes) as subscription:
            await joined(subscription, command)
            loop = asyncio.get_running_loop()
            started = loop.time()
            next_report = started + args.period
            done = 0
            while reports is None or done < reports:
                left = next_report - loop.time()
                if left > 0:
                    try:
                        got: Received = await asyncio.wait_for(subscription.next_received(), left)
                    except TimeoutError:
                        continue
                    message = got.message
                    w = windows.get(message.topic)
                    if w is None:
                        w = windows[message.topic] = TopicWindow(args.window)
                    w.add(got.time, got.size, *_frames_carried(message))
                    continue
                next_report += args.period
                if not windows:
                    if args.timeout is not None and loop.time() - started >= args.timeout:
                        log.error("nothing arrived within %g s", args.timeout)
                        return EXIT_FAILURE
                    continue
                report(windows, time.time(), subscription.missed_topics())
                done += 1
        return EXIT_OK

    return run_client(args, command, body)
