#!/usr/bin/env python3
"""Messages per second through a forwarder, against a bare zmq.proxy and direct pub -> sub.

Three runs of the same stream in one go, each with its own processes:

- direct:     sender XPUB  ->  receiver SUB
- bare proxy: sender XPUB  ->  XSUB = zmq.proxy = XPUB (a child process)  ->  receiver SUB
- forwarder:  sender XPUB  ->  ``rovbus forwarder`` (the real daemon: steerable proxy,
              verbose XPUB, last-value cache and request router beside it)  ->  receiver SUB

The sender is a child process that binds where a node's pub would be, waits for the
receiver's subscription to reach it (through the proxy, when there is one) and sends
``--count`` pre-encoded 7-frame ``can_frame`` envelopes as fast as it can, then an end
marker. The receiver (this process) counts what arrives between the first message and
the marker; msgs/s is that count over that time, loss is what did not arrive (PUB/XPUB
drop at their high-water marks rather than block).

    .venv/bin/python tools/bench_forwarder.py                 # a table
    .venv/bin/python tools/bench_forwarder.py --json          # the figures as JSON
    .venv/bin/python tools/bench_forwarder.py --count 200000 --rounds 3

``ratio_vs_bare`` is forwarder / bare proxy msgs/s (the best round of each); the goal is
at least 0.8.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import zmq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.helpers, shared with the test suite

from rovbus.config import load_system
from tests.helpers.daemons import daemon_process
from tests.helpers.systemfile import forwarder_toml, node_toml, system_toml

END = b"bench/end"
HWM = 0  # unbounded in the sender and receiver: what is measured is the path between


def envelope() -> list[bytes]:
    from rovbus.wire.canframe import CanFrame
    from rovbus.wire.codec import Codec

    frame = CanFrame(
        bus="can0", arbitration_id=0x123, is_extended_id=False, data=b"\x01\x02\x03\x04" * 2
    )
    codec = Codec(username="bench")
    msg = codec.message("can_frame", frame.to_content(), identities=(b"bench/can/can0/123",))
    return codec.encode(msg)


# -- child processes ------------------------------------------------------------------------


def sender(endpoint: str, count: int, ready: Any) -> None:
    ctx = zmq.Context()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.SNDHWM, HWM)
    pub.setsockopt(zmq.LINGER, 5000)
    pub.bind(endpoint)
    ready.set()
    while pub.recv() != b"\x01bench/":  # the receiver's subscription has arrived
        pass
    frames = envelope()
    send = pub.send_multipart
    for _ in range(count):
        send(frames)
    for _ in range(5):
        send([END, b"end"])
        time.sleep(0.05)
    pub.close()
    ctx.term()


def bare_proxy(inner: str, outer: str) -> None:
    ctx = zmq.Context()
    xsub = ctx.socket(zmq.XSUB)
    xpub = ctx.socket(zmq.XPUB)
    for sock in (xsub, xpub):  # the forwarder's own high-water marks, for a fair race
        sock.setsockopt(zmq.SNDHWM, 50_000)
        sock.setsockopt(zmq.RCVHWM, 50_000)
        sock.setsockopt(zmq.LINGER, 0)
    xsub.connect(inner)
    xpub.bind(outer)
    with contextlib.suppress(zmq.ContextTerminated):
        zmq.proxy(xsub, xpub)


# -- the receiver -----------------------------------------------------------------------------


def receive(endpoint: str, count: int, timeout: float = 60.0) -> dict[str, float]:
    ctx = zmq.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.RCVHWM, HWM)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.SUBSCRIBE, b"bench/")
    sub.connect(endpoint)
    got = 0
    first = last = 0.0
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not sub.poll(2000 if got else int(timeout * 1000)):
                break
            frames = sub.recv_multipart(copy=False)
            if frames[0].bytes == END:
                break
            last = time.perf_counter()
            if not got:
                first = last
            got += 1
    finally:
        sub.close()
        ctx.term()
    elapsed = max(last - first, 1e-9)
    return {
        "received": got,
        "msgs_per_s": (got - 1) / elapsed if got > 1 else 0.0,
        "loss": 1 - got / count,
        "seconds": elapsed,
    }


def run_mode(mode: str, count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        # the sender binds where node ``bench`` would publish, inside the forwarder ``edge``
        path = Path(tmp) / "bench.toml"
        node = node_toml("bench", tx_allow=None, iopub=False)
        path.write_text(system_toml(node, forwarder_toml("edge"), interval=1.0, name="bench"))
        system = load_system(path)
        inner = str(system.node("bench").endpoints.pub)
        outer = str(system.forwarder("edge").endpoints.pub)
        spawn = mp.get_context("spawn")
        ready = spawn.Event()
        send_proc = spawn.Process(target=sender, args=(inner, count, ready), daemon=True)
        send_proc.start()
        stack.callback(stop_process, send_proc, join=30)
        ready.wait(30)
        if mode == "bare_proxy":
            helper = spawn.Process(target=bare_proxy, args=(inner, outer), daemon=True)
            helper.start()
            stack.callback(stop_process, helper)
        elif mode == "forwarder":  # the real daemon
            _, systemd = stack.enter_context(daemon_process("forwarder", path, "edge", Path(tmp)))
            systemd.wait_for("READY=1", timeout=30)
        return receive(inner if mode == "direct" else outer, count)


def stop_process(proc: Any, join: float = 0) -> None:
    """Let a child process end within ``join`` seconds, then kill it."""
    proc.join(join)
    if proc.is_alive():
        proc.kill()
        proc.join(5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="messages per run")
    parser.add_argument("--rounds", type=int, default=1, help="runs of each mode (best kept)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    modes = ("direct", "bare_proxy", "forwarder")
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode in modes:  # interleaved, so drift in machine load hits all three
            runs[mode].append(run_mode(mode, args.count))
    best = {m: max(runs[m], key=lambda r: r["msgs_per_s"]) for m in modes}
    figures: dict[str, Any] = {f"{m}_msgs_per_s": round(best[m]["msgs_per_s"]) for m in modes}
    bare = best["bare_proxy"]["msgs_per_s"]
    figures["ratio_vs_bare"] = round(best["forwarder"]["msgs_per_s"] / bare, 3) if bare else 0.0
    figures["ratio_vs_direct"] = (
        round(best["forwarder"]["msgs_per_s"] / best["direct"]["msgs_per_s"], 3)
        if best["direct"]["msgs_per_s"]
        else 0.0
    )
    for m in modes:
        figures[f"{m}_loss"] = round(best[m]["loss"], 4)
        figures[f"{m}_median_msgs_per_s"] = round(
            statistics.median(r["msgs_per_s"] for r in runs[m])
        )
    figures["count"] = args.count
    figures["rounds"] = args.rounds
    figures["receiver_max_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print(f"{args.count} 7-frame can_frame envelopes per run, best of {args.rounds} round(s)")
    print(f"{'path':<12} {'msgs/s':>10} {'median':>10} {'loss':>8}")
    for m in modes:
        print(
            f"{m:<12} {figures[f'{m}_msgs_per_s']:>10,} "
            f"{figures[f'{m}_median_msgs_per_s']:>10,} {figures[f'{m}_loss']:>8.2%}"
        )
    print(f"forwarder / bare proxy: {figures['ratio_vs_bare']:.3f} (goal >= 0.8)")
    print(f"forwarder / direct:     {figures['ratio_vs_direct']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
