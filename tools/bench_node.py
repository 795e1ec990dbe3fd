"""Benchmark a node: CAN frames on a virtual bus, through the node, to a subscriber process.

What it measures (docs/benchmarks.md, Node throughput and latency, has the figures):

- **frames/s sustained with zero loss**: paced rates are stepped up (doubling, then
  bisecting between the last pass and the first failure), ``--seconds`` each. A step passes
  when every frame arrived, the writer kept the pace (>= 95 %) and the last frame arrived
  within 5 % of the step's time, i.e. the node kept up rather than queueing. The figure is
  the delivered rate of the fastest passing step.
- **loss when overloaded**: the writer sends unpaced for ``--seconds``; the fraction that
  never arrived.
- **latency p50/p99 at 8,000 frames/s paced**: subscriber receive time minus the send time
  the writer put into the frame's 8 data bytes (``time.time_ns``, little-endian).
- **node RSS**: ``VmRSS`` of the node process after the latency run (steady state), and its
  peak (``VmHWM``) after the overload run.

Each of these for the node unbatched (one ``can_frame`` message per frame) and batched
(``can_batch``, ``--batch-frames`` / ``--batch-delay-ms``). Without ``--quick`` the
zero-loss search is repeated with a light writer (a new ``can.Message`` put straight on the
node bus's queue instead of ``VirtualBus.send``, which deep-copies every frame under the
node's GIL), and for every contender the table shows the CPU each thread spent per frame.
In the same run, two references
carry the same 8-byte frames between two processes, with the same zero-loss search: raw
pyzmq (PUB -> SUB over tcp loopback, one-frame messages: the transport's ceiling) and Zenoh
(``eclipse-zenoh``, peer mode, multicast scouting off, tcp loopback, congestion control
BLOCK, one frame per message). A third, python-can's virtual bus alone (``--role vbus``:
the same writer and a thread reading with ``bus.recv``, in one process, no rovbus; the
same search, its reader counting), is the ceiling of the node's input here: no node fed by
that bus can publish faster (``vbus_fps``).

python-can's virtual bus only connects buses of one process, so the frame writer lives in
the node's process: this script starts itself as a child (``--role node``) that runs
``NodeDaemon`` on uvloop plus a writer thread with its own ``can.Bus(interface="virtual")``
on the node's channel, driven over a REQ/REP side socket on loopback. The subscriber runs
in this (the parent) process. Every child is stopped on exit, on error and on Ctrl-C.

    .venv/bin/python tools/bench_node.py            # readable table with ratios
    .venv/bin/python tools/bench_node.py --json     # one JSON object
    .venv/bin/python tools/bench_node.py --quick    # short smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import itertools
import json
import math
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
import zmq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.helpers, shared with the test suite

from rovbus.config import load_system
from tests.helpers.loadnode import frame_putter, pace, serve_node
from tests.helpers.ports import free_ports
from tests.helpers.systemfile import node_toml, system_toml

NODE = "bench"
BUS = "can0"
TOPIC_PREFIX = f"{NODE}/can/".encode()
ZENOH_KEY = "rovbus/bench/frames"
LATENCY_RATE = 8_000.0
FIRST_RATE = 8_000.0
MAX_RATE = 4_096_000.0
#: a step passes when the writer reached this share of the rate asked for, and the
#: subscriber's delivered rate (first send to last receive) this share of it
KEEP_UP = 0.95
HWM = 10_000  # rovbus's default high-water marks, for the raw pyzmq reference too
GOALS = {"unbatched_fps": 30_000, "p50_us": 200.0, "p99_us": 2_000.0, "rss_mb": 60.0}


class BenchError(RuntimeError):
    pass


# -- shared by the roles -------------------------------------------------------------------


def stamp() -> bytes:
    """8 data bytes: the send time in ns, little-endian."""
    return time.time_ns().to_bytes(8, "little")


def serve_control(endpoint: str, handle: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    """Answer the parent's requests on a REP socket until ``stop`` or the parent is gone."""
    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    rep.setsockopt(zmq.LINGER, 0)
    rep.bind(endpoint)
    parent = os.getppid()
    try:
        while True:
            if not rep.poll(200):
                if os.getppid() != parent:
                    return
                continue
            request = rep.recv_json()
            assert isinstance(request, dict)
            try:
                reply = handle(request)
            except Exception as exc:
                reply = {"error": f"{type(exc).__name__}: {exc}"}
            rep.send_json(reply)
            if request.get("op") == "stop":
                return
    finally:
        rep.close()
        ctx.term()


def die_with_parent() -> None:
    """Linux: SIGTERM this child when the parent dies, even by SIGKILL."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def rate_of(request: dict[str, Any]) -> float | None:
    rate = request.get("rate")
    return None if rate is None else float(rate)


# -- role: node (NodeDaemon + CAN writer thread) -----------------------------------------


def can_sender(bus: Any, writer: str = "send") -> Callable[[], None]:
    """One classic 8-byte frame per call, IDs 0x100-0x13F, data = send time.

    ``send``: python-can's ``VirtualBus.send``, which deep-copies the message for each
    receiving bus (about 8 µs of the writer's 12-15 µs a frame, under the node's GIL).
    ``queue``: ``frame_putter`` (tests/helpers/loadnode.py), the same frames put straight
    on the other buses' queues (about 3 µs a frame): the node's receive path sees the same,
    and the harness takes less of the process's one GIL.
    """
    import can

    if writer == "queue":
        return frame_putter(bus)
    counter = itertools.count()
    msg = can.Message(arbitration_id=0x100, data=bytes(8), is_extended_id=False)
    send = bus.send

    def send_one() -> None:
        msg.arbitration_id = 0x100 + (next(counter) & 0x3F)
        msg.data = bytearray(stamp())
        send(msg)

    return send_one


def role_node(args: argparse.Namespace) -> int:
    """The node and a writer thread driven by the parent over the control socket."""

    def started(daemon: Any, buses: dict[str, Any]) -> None:
        loop = asyncio.get_running_loop()
        send_one = can_sender(buses[BUS], args.writer)
        threads = {"loop": threading.get_native_id()}
        for thread in threading.enumerate():
            if thread.name.startswith("rovbus-can-rx") and thread.native_id is not None:
                threads["can rx"] = thread.native_id

        async def snapshot() -> dict[str, Any]:
            port = daemon.ports[BUS].stats()
            pub = daemon.publishers["pub"].stats
            return {
                "rx": port.rx,
                "rx_dropped": port.rx_dropped,
                "pub_messages": pub.messages_out,
                "pub_dropped": pub.dropped,
            }

        def handle(request: dict[str, Any]) -> dict[str, Any]:
            op = request.get("op")
            if op == "ping":
                writer = threading.get_native_id()
                return {"pid": os.getpid(), "threads": {**threads, "writer": writer}}
            if op == "send":
                sent, t0, t1 = pace(send_one, rate_of(request), float(request["seconds"]))
                return {"sent": sent, "t0": t0, "t1": t1}
            if op == "stats":
                return asyncio.run_coroutine_threadsafe(snapshot(), loop).result(10)
            if op == "stop":
                loop.call_soon_threadsafe(daemon.request_stop)
                return {}
            raise ValueError(f"unknown op {op!r}")

        def control() -> None:
            try:
                serve_control(args.control, handle)
            finally:
                loop.call_soon_threadsafe(daemon.request_stop)

        threading.Thread(target=control, name="bench-writer", daemon=True).start()

    serve_node(Path(args.config), NODE, started)
    return 0


# -- role: python-can's virtual bus alone -------------------------------------------------


def role_vbus(args: argparse.Namespace) -> int:
    """The node's input on its own: the same writer and a thread reading with ``bus.recv``
    on one virtual channel in one process, as in the node's process, with no rovbus at all.
    Its rate bounds what any node fed by python-can's virtual bus can publish."""
    import can

    channel = f"ceiling-{os.getpid()}"
    reader = can.Bus(interface="virtual", channel=channel)
    writer = can.Bus(interface="virtual", channel=channel)
    send_one = can_sender(writer, args.writer)
    stop = threading.Event()
    count = [0, 0]  # frames read, time.time_ns() of the last

    def read() -> None:
        recv = reader.recv
        clock = time.time_ns
        while not stop.is_set():
            if recv(0.05) is not None:
                count[0] += 1
                count[1] = clock()

    thread = threading.Thread(target=read, name="can rx", daemon=True)
    thread.start()

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        if op == "send":
            sent, t0, t1 = pace(send_one, rate_of(request), float(request["seconds"]))
            return {"sent": sent, "t0": t0, "t1": t1}
        if op == "count":  # RemoteSink
            return {"count": count[0], "last_ns": count[1]}
        if op == "reset":
            count[0] = count[1] = 0
            return {}
        assert thread.native_id is not None
        return {"threads": {"can rx": thread.native_id, "writer": threading.get_native_id()}}

    try:
        serve_control(args.control, handle)
    finally:
        stop.set()
        thread.join(1)
        reader.shutdown()
        writer.shutdown()
    return 0


# -- role: raw pyzmq PUB ---------------------------------------------------------------------


def serve_sender(control: str, send_one: Callable[[], None]) -> None:
    """A reference sender's side socket: ``send`` paces ``send_one``; anything else pings."""

    def handle(request: dict[str, Any]) -> dict[str, Any]:
        if request.get("op") == "send":
            sent, t0, t1 = pace(send_one, rate_of(request), float(request["seconds"]))
            return {"sent": sent, "t0": t0, "t1": t1}
        return {"pid": os.getpid()}

    serve_control(control, handle)


def role_zmq(args: argparse.Namespace) -> int:
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.setsockopt(zmq.SNDHWM, HWM)
    pub.bind(args.data)
    send = pub.send

    try:
        serve_sender(args.control, lambda: send(stamp()))
    finally:
        pub.close()
        ctx.term()
    return 0


# -- role: Zenoh publisher -------------------------------------------------------------------


def zenoh_config(*, listen: str, connect: str | None = None) -> Any:
    import zenoh

    config = zenoh.Config()
    config.insert_json5("mode", '"peer"')
    config.insert_json5("scouting/multicast/enabled", "false")
    config.insert_json5("listen/endpoints", json.dumps([listen]))
    if connect is not None:
        config.insert_json5("connect/endpoints", json.dumps([connect]))
    return config


def role_zenoh(args: argparse.Namespace) -> int:
    import zenoh

    session: Any = zenoh.open(zenoh_config(listen=args.data))
    publisher: Any = session.declare_publisher(
        ZENOH_KEY, congestion_control=zenoh.CongestionControl.BLOCK
    )
    put = publisher.put
    try:
        serve_sender(args.control, lambda: put(stamp()))
    finally:
        publisher.undeclare()
        session.close()
    return 0


# -- parent: children ----------------------------------------------------------------------


CHILDREN: list[Child] = []


class Child:
    """A role process of this script and the REQ socket that drives it."""

    def __init__(self, label: str, role: str, args: list[str], ctx: zmq.Context[Any]) -> None:
        self.label = label
        self.control = f"tcp://127.0.0.1:{free_ports(1)[0]}"
        cmd = [sys.executable, str(Path(__file__).resolve()), "--role", role]
        cmd += ["--control", self.control, *args]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        CHILDREN.append(self)
        self.req = ctx.socket(zmq.REQ)
        self.req.setsockopt(zmq.LINGER, 0)
        self.req.connect(self.control)
        reply = self.call({"op": "ping"}, timeout=30)
        #: native thread id -> what it does (the rest of the process's threads: "other")
        self.threads = {int(tid): name for name, tid in reply.get("threads", {}).items()}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time (user + system) of the child's threads so far, by what they do."""
        tick = os.sysconf("SC_CLK_TCK")
        out: dict[str, float] = {}
        task_dir = f"/proc/{self.pid}/task"
        for tid in os.listdir(task_dir):
            try:
                with open(f"{task_dir}/{tid}/stat") as stat:
                    fields = stat.read().rpartition(")")[2].split()
            except OSError:  # the thread ended
                continue
            name = self.threads.get(int(tid), "other")
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
        return out

    @property
    def pid(self) -> int:
        return self.proc.pid

    def call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.req.send_json(request)
        deadline = time.monotonic() + timeout
        while not self.req.poll(100):
            code = self.proc.poll()
            if code is not None:
                raise BenchError(f"{self.label}: child exited with status {code}")
            if time.monotonic() > deadline:
                raise BenchError(f"{self.label}: no answer to {request['op']} in {timeout} s")
        reply = self.req.recv_json()
        assert isinstance(reply, dict)
        if "error" in reply:
            raise BenchError(f"{self.label}: {request['op']}: {reply['error']}")
        return reply

    def memory_mb(self) -> dict[str, float]:
        """VmRSS and VmHWM of the child, in MiB."""
        out: dict[str, float] = {}
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    out[key] = int(value.split()[0]) / 1024
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.call({"op": "stop"}, timeout=3)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self.req.close(linger=0)
        if self in CHILDREN:
            CHILDREN.remove(self)


def close_children() -> None:
    for child in list(CHILDREN):
        child.close()


# -- parent: subscribers ---------------------------------------------------------------------


class Sink:
    """Frames received since ``reset``: count, time of the last, latencies if asked."""

    def __init__(self) -> None:
        self.count = 0
        self.last_ns = 0
        self.latencies: list[int] | None = None

    def reset(self, record_latency: bool = False) -> None:
        self.latencies = [] if record_latency else None
        self.last_ns = 0
        self.count = 0

    def close(self) -> None:
        pass


class ZmqSink(Sink):
    """A SUB socket in a thread: ``node`` messages (can_frame or can_batch) or ``raw``
    one-frame messages."""

    def __init__(self, ctx: zmq.Context[Any], endpoint: str, prefix: bytes, kind: str) -> None:
        super().__init__()
        self.bad = 0  # messages that are not a 7-frame envelope
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, HWM)
        self.sock.setsockopt(zmq.RCVTIMEO, 100)
        self.sock.setsockopt(zmq.SUBSCRIBE, prefix)
        self.sock.connect(endpoint)
        self._running = True
        run = self._run_node if kind == "node" else self._run_raw
        self._thread = threading.Thread(target=run, name=f"sink-{kind}", daemon=True)
        self._thread.start()

    def _run_node(self) -> None:
        # recv_multipart asks ZMQ_RCVMORE after every frame (about 1.3 µs each here); a
        # node envelope has at least 7 frames, so take 6 and ask only after those.
        sock = self.sock
        recv = zmq.backend.Socket.recv
        more = zmq.backend.Socket.get
        unpack = msgpack.unpackb
        clock = time.time_ns
        from_bytes = int.from_bytes
        while self._running:
            try:
                frames = [recv(sock)]
            except zmq.Again:
                continue
            frames += [recv(sock), recv(sock), recv(sock), recv(sock), recv(sock)]
            while more(sock, zmq.RCVMORE):
                frames.append(recv(sock))
            now = clock()
            if frames[1] != b"<IDS|MSG>" or len(frames) != 7:
                self.bad += 1
                continue
            content = unpack(frames[-1])
            entries = content.get("frames")
            latencies = self.latencies
            if entries is None:
                self.count += 1
                if latencies is not None:
                    latencies.append(now - from_bytes(content["data"], "little"))
            else:
                self.count += len(entries)
                if latencies is not None:
                    latencies.extend([now - from_bytes(e[3], "little") for e in entries])
            self.last_ns = now

    def _run_raw(self) -> None:
        recv = self.sock.recv
        clock = time.time_ns
        from_bytes = int.from_bytes
        while self._running:
            try:
                data = recv()
            except zmq.Again:
                continue
            now = clock()
            self.count += 1
            latencies = self.latencies
            if latencies is not None:
                latencies.append(now - from_bytes(data, "little"))
            self.last_ns = now

    def close(self) -> None:
        self._running = False
        self._thread.join(2)
        self.sock.close(linger=0)


class RemoteSink(Sink):
    """The frames a ``--role vbus`` child's own reader thread counted, asked for over its
    side socket (so ``step`` and ``find_max`` treat the ceiling like any contender)."""

    def __init__(self, child: Child) -> None:
        self._child = child
        self.latencies = None

    def reset(self, record_latency: bool = False) -> None:
        self._child.call({"op": "reset"}, timeout=10)
        self.latencies = [] if record_latency else None

    def _get(self) -> dict[str, Any]:
        return self._child.call({"op": "count"}, timeout=10)

    @property
    def count(self) -> int:  # type: ignore[override]
        return int(self._get()["count"])

    @property
    def last_ns(self) -> int:  # type: ignore[override]
        return int(self._get()["last_ns"])


class ZenohSink(Sink):
    """A Zenoh peer session subscribed to the reference publisher; counts in its callback."""

    def __init__(self, endpoint: str) -> None:
        super().__init__()
        import zenoh

        self.session: Any = zenoh.open(zenoh_config(listen="tcp/127.0.0.1:0", connect=endpoint))
        self.subscriber: Any = self.session.declare_subscriber(ZENOH_KEY, self._on_sample)

    def _on_sample(self, sample: Any) -> None:
        now = time.time_ns()
        self.count += 1
        latencies = self.latencies
        if latencies is not None:
            latencies.append(now - int.from_bytes(sample.payload.to_bytes(), "little"))
        self.last_ns = now

    def close(self) -> None:
        self.subscriber.undeclare()
        self.session.close()


# -- parent: measuring -----------------------------------------------------------------------


@dataclass
class Step:
    rate: float | None  # asked for; None = unpaced
    sent: int
    received: int
    offered_fps: float  # what the writer achieved
    delivered_fps: float  # received / (last receive - first send)
    latencies_us: list[float]
    cpu_us: dict[str, float]  # the publisher process's CPU per frame sent, by thread
    subscriber_cpu_us: float  # this process's CPU per frame sent
    late_s: float  # last receive - last send

    @property
    def loss(self) -> float:
        return max(0.0, (self.sent - self.received) / self.sent) if self.sent else 0.0

    @property
    def passed(self) -> bool:
        if self.rate is None:
            return False
        return (
            self.received == self.sent
            and self.offered_fps >= KEEP_UP * self.rate
            and self.delivered_fps >= KEEP_UP * self.rate
        )


def step(
    child: Child, sink: Sink, rate: float | None, seconds: float, *, latency: bool = False
) -> Step:
    """Send for ``seconds`` at ``rate`` (None: unpaced), wait for the frames to drain."""
    sink.reset(latency)
    cpu0, own0 = child.cpu_seconds(), time.process_time()
    reply = child.call({"op": "send", "rate": rate, "seconds": seconds}, timeout=seconds + 120)
    sent, t0, t1 = int(reply["sent"]), int(reply["t0"]), int(reply["t1"])
    quiet, limit = 1.0, time.monotonic() + 60
    seen, seen_at = -1, time.monotonic()
    while sink.count < sent and time.monotonic() < limit:
        time.sleep(0.01)
        if sink.count != seen:
            seen, seen_at = sink.count, time.monotonic()
        elif time.monotonic() - seen_at > quiet:
            break
    received, last_ns = sink.count, sink.last_ns
    cpu1, own1 = child.cpu_seconds(), time.process_time()
    time.sleep(0.05)  # let stragglers of this step in before the next reset
    lat = sorted(v / 1000 for v in sink.latencies) if sink.latencies is not None else []
    return Step(
        rate,
        sent,
        received,
        sent / max(1e-9, (t1 - t0) / 1e9),
        received / max(1e-9, (last_ns - t0) / 1e9) if received else 0.0,
        lat,
        {k: (v - cpu0.get(k, 0.0)) * 1e6 / max(1, sent) for k, v in cpu1.items()},
        (own1 - own0) * 1e6 / max(1, sent),
        (last_ns - t1) / 1e9 if received else math.nan,
    )


def warm_up(child: Child, sink: Sink, label: str) -> None:
    """Until the subscription has reached the publisher (ZeroMQ's and Zenoh's slow joiner)."""
    for _ in range(50):
        if step(child, sink, 2_000, 0.1).received:
            step(child, sink, 2_000, 0.2)
            return
    raise BenchError(f"{label}: the subscriber never received a frame")


def find_max(
    child: Child, sink: Sink, seconds: float, refine: int, log: Callable[[str], None]
) -> tuple[Step | None, list[Step]]:
    """The fastest paced rate with zero loss: double until a failure, then bisect."""
    steps: list[Step] = []

    def attempt(rate: float) -> Step:
        s = step(child, sink, rate, seconds)
        if not s.passed and s.received == s.sent:  # late, not lost: once more (other load)
            s = step(child, sink, rate, seconds)
        steps.append(s)
        log(
            f"    {rate:>11,.0f}/s: sent {s.sent:,} got {s.received:,} "
            f"writer {s.offered_fps:,.0f}/s delivered {s.delivered_fps:,.0f}/s "
            f"{'ok' if s.passed else 'FAIL'}"
        )
        return s

    best: Step | None = None
    rate = FIRST_RATE
    fail_rate: float | None = None
    while rate <= MAX_RATE:
        s = attempt(rate)
        if s.passed:
            best = s
            rate *= 2
        else:
            fail_rate = rate
            break
    if best is None:  # even the first rate failed: halve down
        assert fail_rate is not None
        rate = fail_rate / 2
        while rate >= 500 and best is None:
            s = attempt(rate)
            if s.passed:
                best = s
            else:
                fail_rate = rate
                rate /= 2
    if best is not None and fail_rate is not None:
        low, high = best.rate or 0.0, fail_rate
        for _ in range(refine):
            mid = math.sqrt(low * high)
            s = attempt(mid)
            if s.passed:
                best, low = s, mid
            else:
                high = mid
    return best, steps


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return math.nan
    index = min(len(sorted_values) - 1, max(0, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[index]


@dataclass
class Figures:
    label: str
    best: Step | None
    steps: list[Step]
    latency: Step | None = None
    overload: Step | None = None
    rss_mb: float = math.nan
    hwm_mb: float = math.nan
    node_stats: dict[str, Any] | None = None

    @property
    def fps(self) -> float:
        return self.best.delivered_fps if self.best is not None else 0.0


class Bench:
    def __init__(self, args: argparse.Namespace, log: Callable[[str], None]) -> None:
        self.args = args
        self.log = log
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.tmp = Path(tempfile.mkdtemp(prefix="rovbus-bench-"))

    def close(self) -> None:
        close_children()
        self.ctx.term()
        for path in self.tmp.iterdir():
            path.unlink()
        self.tmp.rmdir()

    @contextlib.contextmanager
    def _pair(self, child: Child, sink: Sink) -> Iterator[None]:
        try:
            yield
        finally:
            sink.close()
            child.close()

    def node(self, label: str, batch: str | None, writer: str, *, full: bool) -> Figures:
        """A node child: the zero-loss search; with ``full`` also latency, RSS and the
        overload run."""
        args = self.args
        self.log(f"  {label}")
        config = self.tmp / f"{uuid.uuid4().hex[:8]}.toml"
        node = node_toml(NODE, buses=(BUS,), tx_allow="[]", batch=batch, iopub=False)
        config.write_text(system_toml(node, interval=1.0, name="bench"))
        pub = str(load_system(config).node(NODE).endpoints.pub)
        child = Child(label, "node", ["--config", str(config), "--writer", writer], self.ctx)
        sink = ZmqSink(self.ctx, pub, TOPIC_PREFIX, "node")
        with self._pair(child, sink):
            warm_up(child, sink, label)
            figures = Figures(label, None, [])
            if full:
                latency = step(child, sink, LATENCY_RATE, args.latency_seconds, latency=True)
                lat = latency.latencies_us
                self.log(
                    f"    latency at {LATENCY_RATE:,.0f}/s: p50 {percentile(lat, 0.5):,.0f} µs,"
                    f" p99 {percentile(lat, 0.99):,.0f} µs, lost {latency.sent - latency.received}"
                )
                figures.latency = latency
                figures.rss_mb = child.memory_mb()["VmRSS"]
            figures.best, figures.steps = find_max(child, sink, args.seconds, args.refine, self.log)
            if full:
                overload = step(child, sink, None, args.seconds)
                self.log(
                    f"    overloaded: sent {overload.sent:,} got {overload.received:,}"
                    f" (writer {overload.offered_fps:,.0f}/s)"
                )
                figures.overload = overload
                figures.node_stats = child.call({"op": "stats"}, timeout=10)
                figures.hwm_mb = child.memory_mb()["VmHWM"]
        return figures

    def reference(self, label: str, role: str, writer: str = "send") -> Figures:
        self.log(f"  {label}")
        port = free_ports(1)[0]
        sink: Sink
        if role == "vbus":
            child = Child(label, role, ["--writer", writer], self.ctx)
            sink = RemoteSink(child)
        elif role == "zmq":
            data = f"tcp://127.0.0.1:{port}"
            child = Child(label, role, ["--data", data], self.ctx)
            sink = ZmqSink(self.ctx, data, b"", "raw")
        else:
            data = f"tcp/127.0.0.1:{port}"
            child = Child(label, role, ["--data", data], self.ctx)
            sink = ZenohSink(data)
        with self._pair(child, sink):
            warm_up(child, sink, label)
            best, steps = find_max(child, sink, self.args.seconds, self.args.refine, self.log)
        return Figures(label, best, steps)


# -- output --------------------------------------------------------------------------------


def summary(figs: dict[str, Figures]) -> dict[str, Any]:
    unbatched, batched = figs["unbatched"], figs["batched"]
    lat = unbatched.latency.latencies_us if unbatched.latency else []
    loss = unbatched.overload.loss if unbatched.overload else math.nan
    return {
        "unbatched_fps": round(unbatched.fps),
        "batched_fps": round(batched.fps),
        "p50_us": round(percentile(lat, 0.50), 1),
        "p99_us": round(percentile(lat, 0.99), 1),
        "loss": round(loss, 4),
        "rss_mb": round(max(unbatched.rss_mb, batched.rss_mb), 1),
        "raw_pyzmq_fps": round(figs["raw"].fps),
        "zenoh_fps": round(figs["zenoh"].fps),
        "vbus_fps": round(figs["vbus"].fps),
    }


def load_now() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def machine() -> str:
    import importlib.metadata

    import can

    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, pyzmq {zmq.__version__}"
        f" (libzmq {zmq.zmq_version()}), python-can {can.__version__}, uvloop"
        f" {importlib.metadata.version('uvloop')}"
    )


ROWS = (
    ("raw", "raw pyzmq, 1 frame per message", ""),
    ("zenoh", "zenoh, 1 frame per message", ""),
    ("vbus", "python-can virtual bus alone", ""),
    ("vbus-light", "python-can virtual bus, light writer", ""),
    ("unbatched", "node unbatched (can_frame)", f">= {GOALS['unbatched_fps']:,}"),
    ("batched", "node batched (can_batch)", ">= zenoh"),
    ("unbatched-light", "node unbatched, light writer", ""),
    ("batched-light", "node batched, light writer", ""),
)


def table(result: dict[str, Any], figs: dict[str, Figures], args: argparse.Namespace) -> str:
    raw, zen = result["raw_pyzmq_fps"] or 1, result["zenoh_fps"] or 1
    batch = f"{{ max_frames = {args.batch_frames}, max_delay_ms = {args.batch_delay_ms:g} }}"
    out = [
        f"{args.seconds:g} s per step; batched node: batch = {batch}; writer: python-can"
        " VirtualBus.send (light writer: a new can.Message put on the node bus's queue)",
        "",
        f"{'frames/s with zero loss':<38}{'frames/s':>10}{'vs pyzmq':>10}{'vs zenoh':>10}  goal",
    ]
    for key, name, goal in ROWS:
        if key in figs:
            fps = figs[key].fps
            out.append(f"{name:<38}{fps:>10,.0f}{fps / raw:>10.2f}{fps / zen:>10.2f}  {goal}")
    vbus = result["vbus_fps"] or 1
    out.append(
        f"the node batched carries {result['batched_fps'] / vbus:.0%} of what python-can's"
        " virtual bus carries with no node (same writer)"
    )
    out += [
        "",
        "CPU µs per frame at the fastest zero-loss rate (publisher process by thread,",
        "other = ZeroMQ's I/O thread; subscriber = this process)",
        f"{'':<30}{'loop':>7}{'can rx':>8}{'writer':>8}{'other':>7}{'total':>7}{'subscriber':>12}",
    ]
    for key, name, _ in ROWS:
        best = figs[key].best if key in figs else None
        if best is None:
            continue
        cpu = best.cpu_us
        cells = "".join(
            f"{cpu[k]:>{w}.1f}" if k in cpu else f"{'':>{w}}"
            for k, w in (("loop", 7), ("can rx", 8), ("writer", 8))
        )
        total = sum(cpu.values())
        other = cpu.get("other", 0.0)
        out.append(f"{name:<30}{cells}{other:>7.1f}{total:>7.1f}{best.subscriber_cpu_us:>12.1f}")
    out += ["", f"latency at {LATENCY_RATE:,.0f} frames/s paced          p50 µs    p99 µs   lost"]
    for key, name in (("unbatched", "node unbatched"), ("batched", "node batched")):
        lat = figs[key].latency
        if lat is not None:
            goal = f"  goal p50 <= {GOALS['p50_us']:g}, p99 <= {GOALS['p99_us']:,g}"
            out.append(
                f"{name:<38}{percentile(lat.latencies_us, 0.5):>8,.0f}"
                f"{percentile(lat.latencies_us, 0.99):>10,.0f}{lat.sent - lat.received:>7}"
                + (goal if key == "unbatched" else "")
            )
    out += [
        "",
        f"{'overloaded (writer unpaced)':<30}{'sent':>10}{'received':>10}{'loss':>8}"
        f"{'writer/s':>10}{'last late s':>13}  node rx_dropped",
    ]
    for key, name in (("unbatched", "node unbatched"), ("batched", "node batched")):
        o = figs[key].overload
        if o is not None:
            dropped = (figs[key].node_stats or {}).get("rx_dropped", "?")
            out.append(
                f"{name:<30}{o.sent:>10,}{o.received:>10,}{o.loss:>8.1%}{o.offered_fps:>10,.0f}"
                f"{o.late_s:>13.2f}  {dropped}"
            )
    out += [
        "",
        f"{'node memory (MiB)':<30}{'VmRSS after the latency run':>28}{'VmHWM at the end':>18}",
    ]
    for key, name in (("unbatched", "node unbatched"), ("batched", "node batched")):
        f = figs[key]
        out.append(f"{name:<30}{f.rss_mb:>28.1f}{f.hwm_mb:>18.1f}")
    met = [
        (
            f"unbatched_fps >= {GOALS['unbatched_fps']:,}",
            result["unbatched_fps"] >= GOALS["unbatched_fps"],
        ),
        ("batched_fps >= zenoh_fps", result["batched_fps"] >= result["zenoh_fps"]),
        (f"p50_us <= {GOALS['p50_us']:g}", result["p50_us"] <= GOALS["p50_us"]),
        (f"p99_us <= {GOALS['p99_us']:,g}", result["p99_us"] <= GOALS["p99_us"]),
        (f"rss_mb <= {GOALS['rss_mb']:g}", result["rss_mb"] <= GOALS["rss_mb"]),
    ]
    out += ["", "goals: " + "; ".join(f"{n}: {'met' if ok else 'NOT met'}" for n, ok in met)]
    return "\n".join(out)


# -- main ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="a short smoke run")
    p.add_argument("--seconds", type=float, help="seconds per step (default 2, quick 0.5)")
    p.add_argument("--refine", type=int, help="bisection steps after doubling (default 3)")
    p.add_argument("--latency-seconds", type=float, help="latency run length (default 4)")
    p.add_argument("--batch-frames", type=int, default=64, help="batched node: max_frames")
    p.add_argument("--batch-delay-ms", type=float, default=2.0, help="batched node: max_delay_ms")
    p.add_argument(
        "--no-light", action="store_true", help="skip the light-writer rows (quick skips them)"
    )
    # child roles (internal)
    p.add_argument("--role", choices=("node", "vbus", "zmq", "zenoh"), help=argparse.SUPPRESS)
    p.add_argument("--control", help=argparse.SUPPRESS)
    p.add_argument("--config", help=argparse.SUPPRESS)
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--writer", choices=("send", "queue"), default="send", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.seconds is None:
        args.seconds = 0.5 if args.quick else 2.0
    if args.refine is None:
        args.refine = 1 if args.quick else 3
    if args.latency_seconds is None:
        args.latency_seconds = 1.0 if args.quick else 4.0
    return args


def run_parent(args: argparse.Namespace) -> int:
    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def on_term(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    header = f"rovbus node benchmark: {machine()}; load {load_now()} at the start"
    batch = f"{{ max_frames = {args.batch_frames}, max_delay_ms = {args.batch_delay_ms:g} }}"
    bench = Bench(args, log)
    figs: dict[str, Figures] = {}
    log(header)
    try:
        figs["unbatched"] = bench.node("node unbatched", None, "send", full=True)
        figs["batched"] = bench.node("node batched", batch, "send", full=True)
        figs["raw"] = bench.reference("raw pyzmq", "zmq")
        figs["zenoh"] = bench.reference("zenoh", "zenoh")
        figs["vbus"] = bench.reference("python-can virtual bus alone", "vbus")
        if not (args.quick or args.no_light):
            figs["vbus-light"] = bench.reference(
                "python-can virtual bus, light writer", "vbus", "queue"
            )
            figs["unbatched-light"] = bench.node(
                "node unbatched, light writer", None, "queue", full=False
            )
            figs["batched-light"] = bench.node(
                "node batched, light writer", batch, "queue", full=False
            )
    finally:
        bench.close()
    result = summary(figs)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{header}, {load_now()} at the end")
        print(table(result, figs, args))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role is not None:
        # Ctrl-C reaches the whole process group: the parent stops its children in order.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        die_with_parent()
        roles = {"node": role_node, "vbus": role_vbus, "zmq": role_zmq, "zenoh": role_zenoh}
        return roles[args.role](args)
    try:
        return run_parent(args)
    except KeyboardInterrupt:
        close_children()
        return 130
    except BenchError as exc:
        close_children()
        print(f"bench_node: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
