"""Benchmark receiving CAN frames into an asyncio loop: rovbus's CanPort vs python-can's Notifier.

A sender thread writes classic 8-byte frames onto a python-can ``virtual`` bus as fast as
it can; the receiver turns each into a ``CanFrame`` on the event loop thread (what the node
needs), either through :class:`rovbus.can.CanPort` (coalesced hand-over, one loop wake-up
per burst) or through ``can.Notifier(loop=...)`` + ``can.AsyncBufferedReader`` (the
baseline: one ``call_soon_threadsafe`` per frame). Both run in the same process, alternating
rounds, so background load hits both alike; the best round counts.

Two modes per contender:

- ``live``: receiving runs while the sender thread sends (they share the GIL).
- ``paced``: like live, at ``--rate`` frames/s (a busy 1 Mbit/s bus): latency that means
  something, as the receiver is not trailing a sender faster than any real bus.
- ``backlog``: the sender fills the bus's queue first, then receiving starts: the receive
  path's own throughput.

Figures: frames/s (first send to last delivery), loss, latency p50/p99 (delivery time minus
the virtual bus's send timestamp, live and paced), the event loop's worst lag (a 1 ms ticker),
and the process's peak RSS.

    .venv/bin/python tools/bench_can_rx.py                 # human-readable
    .venv/bin/python tools/bench_can_rx.py --json          # one JSON object
    .venv/bin/python tools/bench_can_rx.py --frames 200000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import resource
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import can

from rovbus.can import CanPort
from rovbus.config.models import BusConfig
from rovbus.wire.canframe import CanFrame

DATA = bytes(range(1, 9))
MODES = ("live", "paced", "backlog")


def send_all(bus: can.BusABC, n: int, rate: float | None = None) -> None:
    """Send ``n`` frames, as fast as possible or paced at ``rate`` frames/s."""
    msg = can.Message(arbitration_id=0x0F3, data=DATA, is_extended_id=False)
    send = bus.send
    t0 = time.perf_counter()
    for i in range(n):
        msg.arbitration_id = i & 0x7FF
        send(msg)
        if rate is not None and i % 8 == 7:
            ahead = t0 + (i + 1) / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)


class LagProbe:
    """Measures how late a 1 ms ticker runs: the loop's responsiveness under load."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            self.worst = max(self.worst, time.perf_counter() - t0 - 0.001)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait({self._task})


class Sink:
    """Counts CanFrames delivered on the loop; records latency; signals completion."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.count = 0
        self.latencies: list[float] = []
        self.done = asyncio.Event()
        self.t_last = 0.0

    def take(self, frames: list[CanFrame]) -> None:
        now = time.time()
        self.count += len(frames)
        self.latencies.extend(now - f.timestamp for f in frames[:: max(1, len(frames) // 16)])
        if self.count >= self.n:
            self.t_last = time.perf_counter()
            self.done.set()


async def run_rovbus(n: int, mode: str, rate: float, timeout: float) -> dict[str, Any]:
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    sender = can.Bus(interface="virtual", channel=channel)
    receiver = can.Bus(interface="virtual", channel=channel)
    sink = Sink(n)
    config = BusConfig.model_validate({"name": "bench", "interface": "virtual", "channel": channel})
    port = CanPort(config, sink.take, bus_factory=lambda: receiver, rx_backlog=n + 1)
    return await _measure(n, mode, rate, timeout, sink, sender, port.open, port.aclose)


async def run_notifier(n: int, mode: str, rate: float, timeout: float) -> dict[str, Any]:
    channel = f"bench-{uuid.uuid4().hex[:8]}"
    sender = can.Bus(interface="virtual", channel=channel)
    receiver = can.Bus(interface="virtual", channel=channel)
    sink = Sink(n)
    reader = can.AsyncBufferedReader()
    state: dict[str, Any] = {}

    async def consume() -> None:
        from_msg = CanFrame.from_can_message
        async for msg in reader:
            sink.take([from_msg(msg, "bench", "rx")])

    async def start() -> None:
        state["notifier"] = can.Notifier(receiver, [reader], loop=asyncio.get_running_loop())
        state["task"] = asyncio.get_running_loop().create_task(consume())

    async def stop() -> None:
        state["notifier"].stop()
        state["task"].cancel()
        await asyncio.wait({state["task"]})
        receiver.shutdown()

    return await _measure(n, mode, rate, timeout, sink, sender, start, stop)


async def _measure(
    n: int,
    mode: str,
    rate: float,
    timeout: float,
    sink: Sink,
    sender: can.BusABC,
    start: Callable[[], Coroutine[Any, Any, None]],
    stop: Callable[[], Coroutine[Any, Any, None]],
) -> dict[str, Any]:
    probe = LagProbe()
    live = mode != "backlog"
    pace = rate if mode == "paced" else None
    try:
        if live:
            await start()
            probe.start()
            t0 = time.perf_counter()
            thread = threading.Thread(target=send_all, args=(sender, n, pace), daemon=True)
            thread.start()
        else:
            send_all(sender, n)  # fills the receiver's queue
            probe.start()
            t0 = time.perf_counter()
            await start()
        try:
            async with asyncio.timeout(timeout):
                await sink.done.wait()
        except TimeoutError:
            sink.t_last = time.perf_counter()
        if live:
            await asyncio.to_thread(thread.join)
    finally:
        await probe.stop()
        await stop()
        sender.shutdown()
    elapsed = sink.t_last - t0
    lat = sorted(sink.latencies) if live else []
    return {
        "frames": n,
        "received": sink.count,
        "loss": n - sink.count,
        "seconds": round(elapsed, 4),
        "frames_per_s": round(sink.count / elapsed) if elapsed > 0 else 0,
        "latency_p50_us": round(statistics.median(lat) * 1e6) if lat else None,
        "latency_p99_us": round(lat[int(len(lat) * 0.99)] * 1e6) if lat else None,
        "loop_lag_max_ms": round(probe.worst * 1e3, 2),
    }


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    contenders = {"rovbus": run_rovbus, "notifier": run_notifier}
    results: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in contenders}
    for mode in MODES:
        for _ in range(args.rounds):
            for name, run in contenders.items():
                r = await run(args.frames, mode, args.rate, args.timeout)
                best = results[name].get(mode)
                better = (
                    r["latency_p50_us"] < best["latency_p50_us"]
                    if best is not None and mode == "paced"
                    else best is None or r["frames_per_s"] > best["frames_per_s"]
                )
                if better:
                    results[name][mode] = r
    ratios = {
        mode: round(
            results["rovbus"][mode]["frames_per_s"]
            / max(results["notifier"][mode]["frames_per_s"], 1),
            2,
        )
        for mode in MODES
    }
    return {"results": results, "ratio_rovbus_over_notifier": ratios}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000, help="frames per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per contender and mode")
    parser.add_argument("--rate", type=float, default=8000.0, help="paced mode frames/s")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per round at most")
    parser.add_argument("--no-uvloop", action="store_true", help="use the stock asyncio loop")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    loop_factory = None
    loop_name = "asyncio"
    if not args.no_uvloop:
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
            loop_name = f"uvloop {importlib.metadata.version('uvloop')}"
        except ImportError:
            pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        out = runner.run(bench(args))
    out["loop"] = loop_name
    out["python"] = sys.version.split()[0]
    out["python_can"] = can.__version__
    out["max_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    print(f"CAN receive into asyncio: {args.frames} frames/round, best of {args.rounds}, ", end="")
    print(f"{loop_name}, Python {out['python']}, python-can {out['python_can']}")
    header = f"{'path':<10} {'mode':<8} {'frames/s':>10} {'loss':>6} {'p50 µs':>8} "
    print(header + f"{'p99 µs':>8} {'loop lag ms':>12}")
    for name, modes in out["results"].items():
        for mode, r in modes.items():
            p50 = "-" if r["latency_p50_us"] is None else r["latency_p50_us"]
            p99 = "-" if r["latency_p99_us"] is None else r["latency_p99_us"]
            print(
                f"{name:<10} {mode:<8} {r['frames_per_s']:>10} {r['loss']:>6} {p50:>8} "
                f"{p99:>8} {r['loop_lag_max_ms']:>12}"
            )
    for mode, ratio in out["ratio_rovbus_over_notifier"].items():
        print(f"ratio rovbus/notifier ({mode}): {ratio}x")
    print(f"peak RSS: {out['max_rss_mib']} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
