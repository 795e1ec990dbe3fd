#!/usr/bin/env python3
"""The subscription attack of issue 11, item 2, against a real node or forwarder process.

A raw pyzmq SUB, bound to its own loopback address (127.0.0.2, as another host on the
vehicle LAN would be), subscribes ``--count`` distinct prefixes of ``--size`` bytes each
at the target's pub endpoint, then closes. A legitimate subscriber on 127.0.0.1 listens to
the node's heartbeats throughout, and a legitimate client asks the node for
``kernel_info`` (through the forwarder, with ``--target forwarder``) after the attack.

    .venv/bin/python tools/attack_subscriptions.py --target node --count 50000 --size 1024
    .venv/bin/python tools/attack_subscriptions.py --target forwarder --count 5000 --size 1024
    .venv/bin/python tools/attack_subscriptions.py --target node --count 50000 --size 200 --json

It reports each daemon's resident memory (``VmRSS``) before the attack, at its end (the
attacker's last subscription was taken in, or the daemon refused the attacker), its peak
(``VmHWM``), and after the attacker left; whether the legitimate subscriber still
received heartbeats after the attack and the request was answered; the longest a daemon
took between two heartbeats meanwhile (0.2 s when its event loop kept time); and the
target's subscription counters (``stats``, where the daemon has them).

The attacker knows its subscriptions were all taken in when a heartbeat arrives for the
last one, ``<node>/hb`` (one connection's subscriptions are processed in order); a
daemon that refuses it never sends one, and the run goes on when the daemon's stats show
the refusal (``over_cap``), or when the daemon drops the attacker's connection (a prefix
longer than it takes). "After" is read ``--settle`` seconds (default 5) after the
attacker left.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import zmq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.systemfile import forwarder_toml, node_toml, system_toml
from tests.helpers.waiting import until

ATTACKER = "127.0.0.2"
NODE = "alpha"
FORWARDER = "tether"


def system_file(directory: Path) -> Path:
    node = node_toml(NODE, iopub=False, tx_allow=None)
    path = directory / "system.toml"
    path.write_text(system_toml(node, forwarder_toml(FORWARDER), name="attack"))
    return path


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for process {pid}")


@contextmanager
def daemon(command: str, config: Path, name: str) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rovbus", command, "--config", str(config), name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Heartbeats:
    """The heartbeats a subscriber hears: when each was made (header ``date``) per topic,
    so that the longest a daemon took between two of them (``seq`` one apart) shows how
    long its event loop stalled."""

    def __init__(self, sub: zmq.Socket[Any]) -> None:
        from rovbus.wire.codec import Codec

        self.sub = sub
        self.codec = Codec()
        self.last: dict[bytes, tuple[int, float]] = {}
        self.longest: dict[str, float] = {}

    def read(self) -> int:
        """Read what is waiting; returns how many heartbeats it was."""
        from rovbus.wire.message import parse_date

        count = 0
        while self.sub.poll(0):
            message = self.codec.decode(self.sub.recv_multipart())
            if message.msg_type != "heartbeat":
                continue
            count += 1
            topic, seq = message.identities[0], message.content["seq"]
            made = parse_date(message.header["date"])
            before = self.last.get(topic)
            if before is not None and seq == before[0] + 1:
                name = topic.decode()
                self.longest[name] = max(self.longest.get(name, 0.0), made - before[1])
            self.last[topic] = (seq, made)
        return count


def ask(system: Any, endpoint: str, msg_type: str) -> dict[str, Any]:
    """The content of the reply to one request (a node's shell, a forwarder's control)."""
    import asyncio

    import zmq.asyncio

    from rovbus.transport import Requester
    from rovbus.transport.system_codec import system_codec

    async def request() -> dict[str, Any]:
        ctx = zmq.asyncio.Context()
        codec = system_codec(system, "attack-tool")
        req = Requester(ctx, endpoint, codec)
        try:
            reply = await req.request(codec.message(msg_type, {}), timeout=5, retries=2)
        finally:
            req.close()
            ctx.destroy(linger=0)
        return dict(reply.content)

    return asyncio.run(request())


def prefix(i: int, size: int) -> bytes:
    """Distinct from its first bytes on, so that no two share a path in the trie."""
    stem = b"%08x/" % i
    return (stem * (size // len(stem) + 1))[:size]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", choices=("node", "forwarder"), default="node")
    p.add_argument("--count", type=int, default=50_000, help="distinct subscriptions")
    p.add_argument("--size", type=int, default=1024, help="bytes per subscription prefix")
    p.add_argument(
        "--settle", type=float, default=5.0, help="seconds after the attack to read 'after'"
    )
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    from rovbus.client import BlockingClient
    from rovbus.config import load_system

    ctx = zmq.Context()
    result: dict[str, Any] = {"target": args.target, "count": args.count, "size": args.size}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        config = system_file(Path(tmp))
        system = load_system(config)
        procs = {NODE: stack.enter_context(daemon("node", config, NODE))}
        if args.target == "forwarder":
            procs[FORWARDER] = stack.enter_context(daemon("forwarder", config, FORWARDER))
        group = "topside" if args.target == "forwarder" else "vehicle"
        pub = str(
            system.forwarder(FORWARDER).endpoints.pub
            if args.target == "forwarder"
            else system.node(NODE).endpoints.pub
        )
        client = stack.enter_context(BlockingClient.from_system(config, group=group))
        legit = ctx.socket(zmq.SUB)
        legit.setsockopt(zmq.LINGER, 0)
        legit.subscribe(f"{NODE}/hb".encode())
        legit.subscribe(f"{FORWARDER}/hb".encode())
        legit.connect(pub)
        heard = Heartbeats(legit)
        until(heard.read, 30, "the legitimate subscriber's first heartbeat")

        def stats() -> dict[str, Any]:
            if args.target == "forwarder":
                return ask(
                    system, str(system.forwarder(FORWARDER).endpoints.control), "stats_request"
                )
            return dict(client.request(NODE, "stats_request", timeout=10).content)

        def memory() -> dict[str, float]:
            return {name: round(rss_mb(proc.pid), 1) for name, proc in procs.items()}

        def guard(s: dict[str, Any]) -> dict[str, Any]:
            return dict(s.get("subscriptions") or {})

        result["rss_before_mb"] = memory()
        guard_before = guard(stats())

        attacker = ctx.socket(zmq.SUB)
        attacker.setsockopt(zmq.LINGER, 0)
        attacker.setsockopt(zmq.SNDHWM, 0)  # every subscription goes out
        host, port = pub.removeprefix("tcp://").rsplit(":", 1)
        dropped = attacker.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        attacker.connect(f"tcp://{ATTACKER}:0;{host}:{port}")
        started = time.monotonic()
        for i in range(args.count):
            attacker.subscribe(prefix(i, args.size))
        attacker.subscribe(f"{NODE}/hb".encode())

        def attack_over() -> str | None:
            heard.read()
            if attacker.poll(0):
                return "taken in"
            if guard(stats()).get("over_cap", 0) > guard_before.get("over_cap", 0):
                return "refused"
            return "disconnected" if dropped.poll(0) else None

        result["attack"] = until(attack_over, 3600, "the attack to be taken in or refused")
        result["attack_s"] = round(time.monotonic() - started, 1)
        result["rss_attacked_mb"] = memory()
        result["guard_attacked"] = guard(stats())
        attacker.disable_monitor()
        dropped.close(linger=0)
        attacker.close(linger=0)

        time.sleep(args.settle)  # what memory has come back by then
        heard.read()
        result["rss_after_mb"] = memory()
        result["rss_peak_mb"] = {n: round(rss_mb(p.pid, "VmHWM"), 1) for n, p in procs.items()}
        result["guard_after"] = guard(stats())
        heard.read()  # what arrived so far; now a fresh one
        try:
            until(heard.read, 10, "a heartbeat after the attack")
            result["legit_heartbeat_after"] = True
        except AssertionError:
            result["legit_heartbeat_after"] = False
        reply = client.request(NODE, "kernel_info_request", timeout=10)
        result["request_answered"] = reply.content.get("status") == "ok"
        result["alive"] = {name: proc.poll() is None for name, proc in procs.items()}
        # every 0.2 s when the loop keeps time (the topics' publishers' loops)
        result["longest_heartbeat_interval_s"] = {
            topic: round(gap, 2) for topic, gap in heard.longest.items()
        }
        legit.close(linger=0)
    ctx.term()
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
