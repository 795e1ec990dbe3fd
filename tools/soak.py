"""Soak test: every bus of the demo vehicle at full classic-CAN load for a while.

The demo vehicle's topology (config/demo.toml: its nodes and their buses) is rebuilt on
free loopback ports with fresh virtual channels and no simulated devices; each node runs
as its own process (``--role node``: ``NodeDaemon`` plus one writer thread per bus).
python-can's virtual bus only links buses of one process, so the load is generated inside
each node process: the writer puts paced 8-byte classic frames (data = send time,
``time.time_ns`` little-endian) on the node bus's receive queue, as an adapter would
deliver them. This process subscribes to ``<node>/can/`` of every node and counts.

Reported: per bus frames in (written) and out (received by the subscriber), loss, latency
p50/p99/max (receive time minus the send time in the data); every 10 s the RSS and open
file descriptors (``/proc/PID/fd``) of every daemon. The first sample (10 s in, under load)
is the baseline: growth is the last sample minus it. Exit status 1 on any loss, RSS growth
above 10 MB or any descriptor growth.

    .venv/bin/python tools/soak.py --duration 60
    .venv/bin/python tools/soak.py --duration 600 --json
    .venv/bin/python tools/soak.py --duration 30 --batch demo --rate 4000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.helpers, shared with the test suite

from tests.helpers.loadnode import frame_putter, pace, serve_node
from tests.helpers.systemfile import node_toml, system_toml

RATE = 7_400.0  # 8-byte classic frames a second: one 1 Mbit/s bus, full
SAMPLE_EVERY = 10.0
RSS_LIMIT_MB = 10.0
BATCH = "{ max_frames = 64, max_delay_ms = 2.0 }"


# -- role: node ----------------------------------------------------------------------------


def role_node(args: argparse.Namespace) -> int:
    """The node and a writer thread per bus, which waits for "go" on stdin; prints READY
    once started and, when stopped, JSON with what each bus wrote and the node counted."""
    counts: dict[str, int] = {}

    def write(name: str, bus: Any) -> None:
        counts[name] = pace(frame_putter(bus), args.rate, args.duration)[0]

    def started(daemon: Any, buses: dict[str, Any]) -> None:
        def drive() -> None:
            sys.stdin.readline()  # "go"
            threads = [
                threading.Thread(target=write, args=(name, bus), daemon=True)
                for name, bus in buses.items()
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        threading.Thread(target=drive, daemon=True).start()
        print("READY", flush=True)

    def stopping(daemon: Any) -> None:
        stats = {
            name: {
                "written": counts.get(name, 0),
                "node_rx": port.stats().rx,
                "rx_dropped": port.stats().rx_dropped,
            }
            for name, port in daemon.ports.items()
        }
        pub = daemon.publishers["pub"].stats
        out = {"buses": stats, "pub_messages": pub.messages_out, "pub_dropped": pub.dropped}
        print(json.dumps(out), flush=True)

    serve_node(Path(args.config), args.name, started, stopping)
    return 0


# -- the parent ----------------------------------------------------------------------------


def soak_system(batch: str) -> tuple[str, dict[str, list[str]]]:
    """The demo vehicle's nodes and buses on fresh ports and channels; (TOML, buses of node)."""
    from rovbus.config import load_system

    demo = load_system(REPO / "config" / "demo.toml")
    tables: list[str] = []
    layout: dict[str, list[str]] = {}
    for name, node in demo.nodes.items():
        if node.group != "vehicle":
            continue
        layout[name] = [bus.name for bus in node.buses]
        keys = {}
        for bus in node.buses:
            keys[bus.name] = "bitrate = 1000000\nqueue_size = 8192"
            wanted = BATCH if batch == "all" else None
            if batch == "demo" and bus.batch is not None:
                wanted = (
                    f"{{ max_frames = {bus.batch.max_frames}, "
                    f"max_delay_ms = {bus.batch.max_delay_ms} }}"
                )
            if wanted:
                keys[bus.name] += f"\nbatch = {wanted}"
        tables.append(
            node_toml(name, buses=tuple(layout[name]), tx_allow=None, iopub=False, bus_keys=keys)
        )
    return system_toml(*tables, interval=1.0, name="soak"), layout


class Sink:
    """One SUB socket on every node's pub, on its own thread: counts and latencies per bus."""

    def __init__(self, ctx: Any, endpoints: list[str], nodes: list[str]) -> None:
        import zmq

        from rovbus.wire.codec import Codec

        self.codec = Codec(username="soak")
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, 100_000)
        self.sock.setsockopt(zmq.LINGER, 0)
        for node in nodes:
            self.sock.setsockopt(zmq.SUBSCRIBE, f"{node}/can/".encode())
            self.sock.setsockopt(zmq.SUBSCRIBE, f"{node}/hb".encode())
        for endpoint in endpoints:
            self.sock.connect(endpoint)
        self.heard: set[str] = set()
        self.counts: dict[str, int] = {}
        self.latency: dict[str, array[int]] = {}
        self.bad = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock, decode, clock = self.sock, self.codec.decode, time.time_ns
        while not self._stop.is_set():
            if not sock.poll(100):
                continue
            frames = sock.recv_multipart(copy=True)
            now = clock()
            try:
                msg = decode(frames)
            except Exception:
                self.bad += 1
                continue
            node = frames[0].split(b"/", 1)[0].decode()
            kind = msg.msg_type
            if kind == "heartbeat":
                self.heard.add(node)
                continue
            key = f"{node}/{msg.content['bus']}"
            lat = self.latency.get(key)
            if lat is None:
                lat = self.latency[key] = array("q")
                self.counts[key] = 0
            if kind == "can_batch":
                entries = msg.content["frames"]
                self.counts[key] += len(entries)
                for entry in entries:
                    lat.append(now - int.from_bytes(entry[3], "little"))
            elif kind == "can_frame":
                self.counts[key] += 1
                lat.append(now - int.from_bytes(msg.content["data"], "little"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def proc_sample(pid: int) -> tuple[float, int]:
    """(RSS in MB, open descriptors) of a process."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def pct(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))] / 1000.0


def run(args: argparse.Namespace, say: Any) -> dict[str, Any]:
    import zmq

    toml, layout = soak_system(args.batch)
    workdir = Path(tempfile.mkdtemp(prefix="rovbus-soak-"))
    config = workdir / "soak.toml"
    config.write_text(toml)
    from rovbus.config import load_system

    system = load_system(config)
    children: dict[str, subprocess.Popen[str]] = {}
    ctx = zmq.Context()
    sink: Sink | None = None
    try:
        for node in layout:
            cmd = [
                sys.executable,
                str(Path(__file__).resolve()),
                "--role",
                "node",
                "--config",
                str(config),
                "--name",
                node,
                "--rate",
                str(args.rate),
                "--duration",
                str(args.duration),
            ]
            children[node] = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO
            )
        for node, child in children.items():
            assert child.stdout is not None
            if child.stdout.readline().strip() != "READY":
                raise RuntimeError(f"node {node} did not start")
        endpoints = [str(system.node(n).endpoints.pub) for n in layout]
        sink = Sink(ctx, endpoints, list(layout))
        deadline = time.monotonic() + 10
        while sink.heard != set(layout) and time.monotonic() < deadline:
            time.sleep(0.05)
        if sink.heard != set(layout):
            raise RuntimeError(f"no heartbeat from {set(layout) - sink.heard}")
        buses = sum(len(b) for b in layout.values())
        say(
            f"soak: {buses} buses on {len(layout)} nodes ({', '.join(layout)}), "
            f"{args.rate:.0f} frames/s each, {args.duration:g} s, batch={args.batch}"
        )
        for child in children.values():
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        started = time.monotonic()
        samples: list[dict[str, Any]] = []
        next_sample = started + SAMPLE_EVERY
        while True:
            now = time.monotonic()
            if now >= next_sample - 0.01:
                sample: dict[str, Any] = {"t": round(now - started, 1)}
                for node, child in children.items():
                    rss, fds = proc_sample(child.pid)
                    sample[node] = {"rss_mb": round(rss, 2), "fds": fds}
                samples.append(sample)
                got = sum(sink.counts.values())
                say(
                    f"  t={sample['t']:5.1f}s received {got:,} "
                    + " ".join(
                        f"{n}: {sample[n]['rss_mb']:.1f} MB {sample[n]['fds']} fds"
                        for n in children
                    )
                )
                next_sample += SAMPLE_EVERY
            if now - started >= args.duration:
                break
            time.sleep(min(0.2, max(0.0, next_sample - time.monotonic())))
        time.sleep(3.0)  # the last frames through the batchers and sockets
        results: dict[str, Any] = {}
        for node, child in children.items():
            child.send_signal(signal.SIGTERM)
            out, _ = child.communicate(timeout=30)
            results[node] = json.loads(out.strip().splitlines()[-1])
            if child.returncode != 0:
                raise RuntimeError(f"node {node} exited {child.returncode}")
        sink.close()
        per_bus: dict[str, Any] = {}
        all_lat: list[int] = []
        for node, buses_of in layout.items():
            for bus in buses_of:
                key = f"{node}/{bus}"
                node_bus = results[node]["buses"][bus]
                lat = sorted(sink.latency.get(key, array("q")))
                all_lat.extend(lat)
                fin, fout = node_bus["written"], sink.counts.get(key, 0)
                per_bus[key] = {
                    "frames_in": fin,
                    "frames_out": fout,
                    "loss": fin - fout,
                    "node_rx": node_bus["node_rx"],
                    "rx_dropped": node_bus["rx_dropped"],
                    "p50_us": round(pct(lat, 0.50), 1),
                    "p99_us": round(pct(lat, 0.99), 1),
                    "max_us": round(lat[-1] / 1000.0, 1) if lat else None,
                }
        all_lat.sort()
        base, last = samples[0], samples[-1]
        rss_growth = max(last[n]["rss_mb"] - base[n]["rss_mb"] for n in children)
        fd_growth = max(last[n]["fds"] - base[n]["fds"] for n in children)
        frames_in = sum(b["frames_in"] for b in per_bus.values())
        frames_out = sum(b["frames_out"] for b in per_bus.values())
        summary = {
            "duration_s": args.duration,
            "rate_per_bus": args.rate,
            "batch": args.batch,
            "buses": per_bus,
            "frames_in": frames_in,
            "frames_out": frames_out,
            "loss": frames_in - frames_out,
            "p50_us": round(pct(all_lat, 0.50), 1),
            "p99_us": round(pct(all_lat, 0.99), 1),
            "rss_growth_mb": round(rss_growth, 2),
            "fd_growth": fd_growth,
            "pub_dropped": sum(r["pub_dropped"] for r in results.values()),
            "bad_messages": sink.bad,
            "samples": samples,
        }
        summary["ok"] = (
            summary["loss"] == 0 and rss_growth <= RSS_LIMIT_MB and fd_growth <= 0 and frames_in > 0
        )
        return summary
    finally:
        if sink is not None and not sink.sock.closed:
            sink.close()
        for child in children.values():
            if child.poll() is None:
                child.kill()
                child.wait()
        ctx.destroy(linger=0)
        with contextlib.suppress(OSError):
            config.unlink()
            workdir.rmdir()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--rate", type=float, default=RATE, help="frames/s per bus")
    parser.add_argument(
        "--batch",
        choices=["all", "demo", "none"],
        default="all",
        help="batching: every bus (64 frames / 2 ms), as config/demo.toml has it, or none",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON summary")
    parser.add_argument("--role", choices=["node"], help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "node":
        return role_node(args)
    if args.duration < SAMPLE_EVERY:
        parser.error(f"--duration must be at least {SAMPLE_EVERY:g} s (one RSS/fd sample)")

    def say(text: str) -> None:
        print(text, file=sys.stderr if args.json else sys.stdout, flush=True)

    summary = run(args, say)
    if args.json:
        print(json.dumps(summary))
    else:
        for key, bus in summary["buses"].items():
            say(
                f"{key:22} in {bus['frames_in']:>9,} out {bus['frames_out']:>9,} "
                f"loss {bus['loss']:>6} p50 {bus['p50_us']:>8.1f} us p99 {bus['p99_us']:>8.1f} us "
                f"max {bus['max_us']} us"
            )
        say(
            f"total: in {summary['frames_in']:,} out {summary['frames_out']:,} loss "
            f"{summary['loss']}, p99 {summary['p99_us']} us, RSS growth "
            f"{summary['rss_growth_mb']} MB, fd growth {summary['fd_growth']}: "
            + ("OK" if summary["ok"] else "FAIL")
        )
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
