"""Subscriptions that grow a daemon's memory without limit (issue 11, item 2), as an
attacker sends them: raw pyzmq SUB sockets bound to 127.0.0.2 (another host, as far as the
daemon can tell) against a real node process and a real forwarder process, while a
legitimate subscriber on 127.0.0.1 listens to the node's heartbeats.

What must hold: the daemon refuses the attacker and counts it (``stats``:
``subscriptions``), stays alive and answering, the legitimate subscriber hears the node
again (after at most one reset of the publisher), and once the attacker has left the
daemon's resident memory (``VmRSS``) is within 20 MB of what it was before the attack.
Before the caps, each of these attacks left the daemon 40 MB to 100 MB larger for good.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq

from rovbus.config import SystemConfig, load_system
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from tests.helpers.daemons import running
from tests.helpers.systemfile import forwarder_toml, node_toml
from tests.helpers.waiting import until
from tools.attack_subscriptions import ask, prefix, rss_mb

ATTACKER = "127.0.0.2"
SLACK_MB = 20.0
COUNT = 3_000  # distinct prefixes: ~35 MB in one libzmq trie at 240 bytes each
SIZE = 240  # bytes: under the default max_prefix (256), so the count cap is what holds


def memory_back(pid: int, before: float, name: str) -> None:
    """Wait until process ``pid`` holds less than ``before`` + 20 MB again."""
    try:
        until(lambda: rss_mb(pid) < before + SLACK_MB, 20, "")
    except TimeoutError:
        raise AssertionError(
            f"{name} holds {rss_mb(pid):.1f} MB after the attack, {before:.1f} MB before"
        ) from None


class Sockets:
    """Raw sockets to one pub endpoint, from 127.0.0.1 or from the attacker's address."""

    def __init__(self, pub: str, codec: Codec) -> None:
        self.ctx: zmq.Context[Any] = zmq.Context()
        self.pub = pub
        self.codec = codec

    def sub(self, *topics: bytes, source: str | None = None) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = self.ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.SNDHWM, 0)  # every subscription goes out
        for topic in topics:
            sock.subscribe(topic)
        host, port = self.pub.removeprefix("tcp://").rsplit(":", 1)
        sock.connect(f"tcp://{source}:0;{host}:{port}" if source else self.pub)
        return sock

    def heartbeat(self, sock: zmq.Socket[Any], newer_than: int = -1) -> Message | None:
        """The first heartbeat waiting on ``sock`` with a ``seq`` above ``newer_than``."""
        while sock.poll(0):
            message = self.codec.decode(sock.recv_multipart())
            if message.msg_type == "heartbeat" and message.content["seq"] > newer_than:
                return message
        return None

    def close(self) -> None:
        self.ctx.destroy(linger=0)


class RawSub:
    """A SUB peer spoken by hand (ZMTP 3.0, NULL), which sends what libzmq's SUB never
    would: an unsubscribe for a prefix it never subscribed to."""

    def __init__(self, pub: str, source: str) -> None:
        host, port = pub.removeprefix("tcp://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), source_address=(source, 0))
        greeting = b"\xff" + bytes(8) + b"\x7f\x03\x00" + b"NULL".ljust(20, b"\x00") + bytes(32)
        self.sock.sendall(greeting)
        ready = b"\x05READY" + b"\x0bSocket-Type" + (3).to_bytes(4, "big") + b"SUB"
        self.sock.sendall(b"\x04" + bytes([len(ready)]) + ready)
        answer = b""  # the publisher's greeting and READY: the handshake is over
        while not answer.endswith(b"XPUB"):
            got = self.sock.recv(256)
            if not got:
                raise AssertionError(f"the publisher closed the handshake: {answer!r}")
            answer += got

    def unsubscribe(self, prefix: bytes) -> None:
        body = b"\x00" + prefix
        self.sock.sendall(b"\x02" + len(body).to_bytes(8, "big") + body)  # a long frame

    def close(self) -> None:
        self.sock.close()


@dataclass
class Scene:
    """Node ``alpha`` (and forwarder ``tether`` in front of it) as processes, and a
    legitimate subscriber to alpha's heartbeats on the pub the attacker goes for."""

    system: SystemConfig
    pids: dict[str, int]
    sockets: Sockets
    legit: zmq.Socket[Any]

    def stats(self, daemon: str) -> dict[str, Any]:
        """The ``subscriptions`` of a daemon's stats."""
        if daemon == "tether":
            endpoint = str(self.system.forwarder(daemon).endpoints.control)
        else:
            endpoint = str(self.system.node(daemon).endpoints.shell)
        return dict(ask(self.system, endpoint, "stats_request")["subscriptions"])

    def heard_after(self, seen: int) -> None:
        until(lambda: self.sockets.heartbeat(self.legit, seen), 20, "a heartbeat after")

    @contextmanager
    def attack(self, send: Callable[[zmq.Socket[Any]], None]) -> Iterator[int]:
        """A SUB from the attacker's address, on which ``send`` subscribes what it will,
        then ``alpha/hb``; yields once the daemon took it all in (a heartbeat answers the
        last subscription) or disconnected the attacker (refused or dropped it), and
        closes it afterwards. Keeps the legitimate subscriber read meanwhile (a SUB
        subscribes again after a reset only when its owner reads it), and yields the last
        heartbeat ``seq`` it had by then."""
        sockets = self.sockets
        attacker = sockets.sub(source=ATTACKER)
        dropped = attacker.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        seen = -1
        try:
            send(attacker)
            attacker.subscribe(b"alpha/hb")

            def over() -> bool:
                nonlocal seen
                while (hb := sockets.heartbeat(self.legit, seen)) is not None:
                    seen = hb.content["seq"]
                return bool(attacker.poll(0) or dropped.poll(0))

            until(over, 30, "the attack taken in, or the attacker disconnected")
            yield seen
        finally:
            attacker.disable_monitor()
            dropped.close(linger=0)
            attacker.close(linger=0)


@contextmanager
def scene(write_system: Callable[..., Path], tmp_path: Path, *, forwarder: bool) -> Iterator[Scene]:
    path = write_system(node_toml("alpha", iopub=False), forwarder_toml("tether"))
    system = load_system(path)
    pub = (
        system.forwarder("tether").endpoints.pub
        if forwarder
        else system.node("alpha").endpoints.pub
    )
    with running(path, tmp_path, ["alpha"], ["tether"] if forwarder else []) as procs:
        sockets = Sockets(str(pub), Codec(system.hmac_key()))
        try:
            legit = sockets.sub(b"alpha/hb")
            until(lambda: sockets.heartbeat(legit), 20, "a first heartbeat")
            yield Scene(system, {n: proc.pid for n, (proc, _) in procs.items()}, sockets, legit)
        finally:
            sockets.close()


def subscribing(count: int, size: int) -> Callable[[zmq.Socket[Any]], None]:
    def send(attacker: zmq.Socket[Any]) -> None:
        for i in range(count):
            attacker.subscribe(prefix(i, size))

    return send


def test_a_node_refuses_a_subscriber_over_its_share_and_gives_the_memory_back(
    write_system: Callable[..., Path], tmp_path: Path
) -> None:
    with scene(write_system, tmp_path, forwarder=False) as s:
        before = rss_mb(s.pids["alpha"])
        with s.attack(subscribing(COUNT, SIZE)) as seen:
            memory_back(s.pids["alpha"], before, "the node")  # the attacker still there
        s.heard_after(seen)
        subs = s.stats("alpha")
        assert subs["over_cap"] == 1
        assert ATTACKER in subs["refused_addresses"]
        shell = str(s.system.node("alpha").endpoints.shell)
        assert ask(s.system, shell, "kernel_info_request")["status"] == "ok"
        # and the node table says so: SUBS "1 !1"
        nodes = [sys.executable, "-m", "rovbus", "nodes", "--wait", "5", "--group", "vehicle"]
        done = subprocess.run(
            [*nodes, "--config", str(s.system.source)], capture_output=True, text=True, timeout=30
        )
        row = next(line for line in done.stdout.splitlines() if line.startswith("alpha"))
        assert row.endswith("!1"), done.stdout


def test_a_node_drops_a_subscriber_whose_prefix_is_too_long(
    write_system: Callable[..., Path], tmp_path: Path
) -> None:
    with scene(write_system, tmp_path, forwarder=False) as s:
        before = rss_mb(s.pids["alpha"])
        with s.attack(subscribing(1_000, 1024)) as seen:  # ~48 MB if taken in
            memory_back(s.pids["alpha"], before, "the node")
        s.heard_after(seen)
        subs = s.stats("alpha")
        assert subs["in_force"] == 1  # the legitimate subscriber's alone
        assert subs["resets"] == 0  # libzmq dropped the attacker: no one else noticed


def test_a_forwarder_refuses_a_subscriber_over_its_cap_and_the_nodes_behind_it_hold_nothing(
    write_system: Callable[..., Path], tmp_path: Path
) -> None:
    with scene(write_system, tmp_path, forwarder=True) as s:
        before = {name: rss_mb(pid) for name, pid in s.pids.items()}
        with s.attack(subscribing(COUNT, SIZE)) as seen:
            for name, pid in s.pids.items():
                memory_back(pid, before[name], name)
        s.heard_after(seen)
        subs = s.stats("tether")
        assert subs["over_cap"] == 1
        assert ATTACKER in subs["refused_addresses"]
        # the node behind held what the forwarder passed, and never refused it
        assert s.stats("alpha")["over_cap"] == 0


def test_a_forwarder_counts_what_two_connections_leave_behind_unsubscribing_for_each_other(
    write_system: Callable[..., Path], tmp_path: Path
) -> None:
    """One connection subscribes, another unsubscribes the same prefix (which it never
    held): libzmq's XSUB drops the prefix upstream, while the forwarder's XPUB keeps it for
    the first connection; only libzmq's own count of the XPUB's prefixes shows it."""
    with scene(write_system, tmp_path, forwarder=True) as s:
        before = rss_mb(s.pids["tether"])
        canceller = RawSub(str(s.system.forwarder("tether").endpoints.pub), ATTACKER)

        def subscribe_and_cancel(attacker: zmq.Socket[Any]) -> None:
            for i in range(COUNT):
                attacker.subscribe(prefix(i, SIZE))
                canceller.unsubscribe(prefix(i, SIZE))

        with s.attack(subscribe_and_cancel) as seen:
            memory_back(s.pids["tether"], before, "the forwarder")
        canceller.close()
        s.heard_after(seen)
        assert s.stats("tether")["over_cap"] >= 1
