"""Raw peers at every bound socket of a node, a forwarder and the demo supervisor.

The daemons run as the demo runs them: ``rovbus demo --headless`` starts node ``alpha``
(a simulated IMU on its bus, requests signed with the system key) and forwarder
``tether`` as processes, and binds its own control socket. Each test aims raw pyzmq
sockets of every type (DEALER, ROUTER, REQ, PUSH, SUB, XSUB, PUB, PAIR), and raw TCP
speaking broken ZMTP, at one daemon's endpoints with framings rovbus's client never sends;
then it proves every daemon alive and answering (a real request gets its real reply,
heartbeats still flow through the node's pub and through the forwarder) and that the bad
input was counted where the daemon counts it. The last word is the demo's: stopped at the
end, it reports that no process died and exits 0.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zmq

from rovbus.config import SystemConfig, load_system
from rovbus.errors import SignatureError
from rovbus.sim.supervisor import LINE_LIMIT
from rovbus.wire.codec import DELIMITER, Codec
from rovbus.wire.message import Message
from tests.helpers.systemfile import forwarder_toml, system_toml
from tests.helpers.waiting import until
from tests.reliability.threads import signed_extra, start_codec
from tests.sim.devicefiles import sim_node_toml

LONG = 10_000  # frames in the "huge frame count" messages
ROUTING = (b"alpha", b"shell")
ROUTERS = ("shell", "control", "stdin")  # what the forwarder's request endpoint expects first
#: peers of the socket types each kind of endpoint refuses in the ZMTP handshake
REFUSED_AT_ROUTER = (zmq.PUSH, zmq.SUB, zmq.PUB, zmq.PAIR)
REFUSED_AT_PUB = (zmq.PUSH, zmq.DEALER, zmq.REQ, zmq.ROUTER, zmq.PAIR)
HANDSHAKE_REFUSED = (
    zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
)


def envelope_framings(codec: Codec, routing: tuple[bytes, ...] = ()) -> list[list[bytes]]:
    """Messages no rovbus client sends to a request channel, as a DEALER sends them (a
    REQ puts an empty frame first, a ROUTER's peer sees the same). None can be verified,
    so with a key none may be answered. ``routing``: frames before the delimiter."""
    good = codec.encode(codec.message("kernel_info_request", {}))  # [DELIM, sig, header, ..]
    return [
        [b"x"],  # a bare byte, no delimiter
        [b""],  # one empty frame
        [*routing, DELIMITER],  # only the delimiter
        [b""] * 6,  # empty frames
        [*routing, DELIMITER, b"\xc1", b"\xff" * 40, b"", b"\x00", b"{"],  # garbage after it
        [*routing, DELIMITER, b"0" * 64, *good[2:]],  # a wrong signature
        [*routing, DELIMITER, b"", *good[2:]],  # unsigned
        [*routing, *good[:3]],  # too few frames to verify
        [*routing, b"", *good[1:]],  # an empty frame where the delimiter goes
        [b"x"] * LONG,  # a huge frame count
        [DELIMITER] * LONG,
    ]


#: to the hb echo, which answers what a REP answers: routing frames, "", a body
HB_BAD = [[b"x"], [b""], [b"a", b"b"], [b"x"] * LONG]
HB_GOOD = [[b"", b"ping"], [b"hop", b"", b"x"], [b"", *[b"y"] * LONG]]


def greeting(mechanism: bytes = b"NULL", signature_end: bytes = b"\x7f") -> bytes:
    """A ZMTP 3.0 client greeting (64 bytes)."""
    return (
        b"\xff" + bytes(8) + signature_end + b"\x03\x00" + mechanism.ljust(20, b"\x00") + bytes(32)
    )


def ready(socket_type: bytes) -> bytes:
    """ZMTP's READY command naming the socket type."""
    body = b"\x05READY" + b"\x0bSocket-Type" + len(socket_type).to_bytes(4, "big") + socket_type
    return b"\x04" + bytes([len(body)]) + body


def raw_streams(peer_type: bytes) -> list[bytes]:
    """Broken ZMTP over raw TCP; ``peer_type`` is a socket type the endpoint accepts."""
    return [
        b"GET / HTTP/1.1\r\nHost: rov\r\n\r\n",  # not ZMTP
        greeting(signature_end=b"\x00") + bytes(64),  # a wrong ZMTP signature
        greeting(b"EVIL"),  # an unknown security mechanism
        greeting() + ready(b"EVIL"),  # READY naming no known socket type
        greeting() + ready(peer_type) + b"\x02" + (1 << 62).to_bytes(8, "big"),  # 2^62 bytes
        greeting() + ready(peer_type) + b"\x01\x01x",  # a message cut off after a MORE frame
    ]


@dataclass
class Vehicle:
    system: SystemConfig
    run: Path
    demo: subprocess.Popen[str]
    codec: Codec
    ctx: zmq.Context[Any]
    pids: dict[str, int]
    start_codecs: dict[str, Codec] = field(default_factory=dict)

    def codec_at(self, endpoint: object) -> Codec:
        """The codec for requests to ``endpoint``: the start key of the daemon that
        verifies them (the forwarder for its control, node alpha for everything else,
        requests routed through the forwarder included)."""
        tether = self.system.forwarder("tether").endpoints
        name = "tether" if str(endpoint) == str(tether.control) else "alpha"
        if name not in self.start_codecs:
            pub = tether.pub if name == "tether" else self.system.node(name).endpoints.pub
            self.start_codecs[name] = start_codec(self.ctx, str(pub), self.codec, name)
        return self.start_codecs[name]

    # -- raw sockets ------------------------------------------------------------------------

    def socket(self, kind: int, endpoint: object, **options: Any) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        for name, value in options.items():
            sock.setsockopt(getattr(zmq, name), value)
        sock.connect(str(endpoint))
        return sock

    def router(self, endpoint: object) -> zmq.Socket[bytes]:
        """A ROUTER connected to ``endpoint``, which it addresses as ``b"daemon"``."""
        return self.socket(zmq.ROUTER, endpoint, CONNECT_ROUTING_ID=b"daemon", ROUTER_MANDATORY=1)

    def send_routed(self, router: zmq.Socket[bytes], frames: list[bytes]) -> None:
        """Send from a ROUTER once the daemon is connected (until then it is unreachable)."""

        def sent() -> bool:
            try:
                router.send_multipart([b"daemon", *frames])
            except zmq.ZMQError as exc:
                if exc.errno != zmq.EHOSTUNREACH:
                    raise
                return False
            return True

        until(sent, what="the ROUTER peer to connect")

    def refused(self, kind: int, endpoint: object, send: list[bytes] | None = None) -> None:
        """A peer of a type ``endpoint`` does not accept connects (and sends, if it can);
        the handshake fails and the connection is dropped."""
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        monitor = sock.get_monitor_socket(HANDSHAKE_REFUSED)
        try:
            sock.connect(str(endpoint))
            if send is not None:
                with contextlib.suppress(zmq.Again):  # refused already: no pipe left
                    sock.send_multipart(send, flags=zmq.NOBLOCK)
            assert monitor.poll(10_000), f"{endpoint} accepted a {kind} peer"
        finally:
            sock.disable_monitor()
            monitor.close()
            sock.close()

    def connected(self, kind: int, endpoint: object) -> zmq.Socket[bytes]:
        """A socket of ``kind`` once its handshake with ``endpoint`` is done (an XSUB drops
        what it sends before that)."""
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        try:
            sock.connect(str(endpoint))
            assert monitor.poll(10_000), f"no handshake with {endpoint}"
        finally:
            sock.disable_monitor()
            monitor.close()
        return sock

    def raw_tcp(self, endpoint: object, peer_type: bytes) -> None:
        """Broken ZMTP over raw TCP, then end of input: the daemon reads it all and hangs up."""
        host, port = str(endpoint).removeprefix("tcp://").rsplit(":", 1)
        for data in raw_streams(peer_type):
            with socket.create_connection((host, int(port)), timeout=10) as conn:
                try:
                    conn.sendall(data)
                    conn.shutdown(socket.SHUT_WR)
                    while conn.recv(4096):  # its greeting, then the end
                        pass
                except (ConnectionResetError, BrokenPipeError):  # it hung up first
                    pass
                except OSError as exc:  # shutdown() after it hung up
                    if exc.errno != errno.ENOTCONN:
                        raise

    # -- attacks ----------------------------------------------------------------------------

    def at_requests(
        self, endpoint: object, routing: tuple[bytes, ...] = (), answers: bool = True
    ) -> int:
        """Every framing from a DEALER, a ROUTER and a REQ peer; where the socket answers,
        a valid request after them on the DEALER and the ROUTER, whose reply must come
        first; then the peers and the TCP it must refuse. Returns how many went in."""
        dealer, router = self.socket(zmq.DEALER, endpoint), self.router(endpoint)
        req = self.socket(zmq.REQ, endpoint, REQ_RELAXED=1)
        sent = 0
        try:
            codec = self.codec_at(endpoint)
            for frames in envelope_framings(codec, routing):
                dealer.send_multipart(frames)
                self.send_routed(router, frames)
                req.send_multipart(frames)
                sent += 3
            for sock, routed in ((dealer, False), (router, True)) if answers else ():
                # one pipe, in order: the first thing back must be this request's reply
                good = codec.message("kernel_info_request", {}, identities=routing)
                self.ask(sock, good, codec, routed)
        finally:
            for sock in (dealer, router, req):
                sock.close(linger=10_000)  # what is still queued goes out
        self.refuse_all(endpoint, REFUSED_AT_ROUTER, b"DEALER")
        return sent

    def at_echo(self, endpoint: object) -> None:
        """The hb echo: pings come back as from a REP, the rest is dropped (counted)."""
        dealer, router = self.socket(zmq.DEALER, endpoint), self.router(endpoint)
        req = self.socket(zmq.REQ, endpoint)
        try:
            for frames in [*HB_BAD, *HB_GOOD]:
                dealer.send_multipart(frames)
                self.send_routed(router, frames)
            for ping in HB_GOOD:  # in order, so every bad one before them was read
                assert dealer.poll(10_000), "hb stopped echoing"
                assert dealer.recv_multipart() == ping
                assert router.poll(10_000), "hb stopped echoing"
                assert router.recv_multipart() == [b"daemon", *ping]
            req.send_multipart([b"a", b"b"])  # a multipart ping
            assert req.poll(10_000), "hb does not echo"
            assert req.recv_multipart() == [b"a", b"b"]
        finally:
            for sock in (dealer, router, req):
                sock.close()
        self.refuse_all(endpoint, REFUSED_AT_ROUTER, b"DEALER")

    def at_pub(self, endpoint: object) -> None:
        """A PUB or XPUB: odd subscriptions from a SUB, raw messages from an XSUB, the last
        of them ``LONG`` frames; then the peers and the TCP it must refuse."""
        sub = self.socket(zmq.SUB, endpoint)
        xsub = self.connected(zmq.XSUB, endpoint)
        for prefix in (b"\xff" * 200, b"\x00\x01", b"alpha/hb\x00"):
            sub.setsockopt(zmq.SUBSCRIBE, prefix)
        for frames in ([b"x"], [b""], [b"\x02junk"], [b"\x00never"], [b"\x01alpha/", b"x"]):
            xsub.send_multipart(frames)
        xsub.send_multipart([b"x"] * LONG)
        sub.close()
        xsub.close(linger=10_000)  # what it sent still goes out
        self.refuse_all(endpoint, REFUSED_AT_PUB, b"SUB")

    def refuse_all(self, endpoint: object, kinds: tuple[int, ...], fitting: bytes) -> None:
        """Peers of each of ``kinds``, refused in the handshake (those that can, sending),
        then broken ZMTP from raw TCP (``fitting``: a type the endpoint accepts)."""
        for kind in kinds:
            sends = kind in (zmq.PUSH, zmq.PAIR, zmq.DEALER)
            self.refused(kind, endpoint, [b"x"] if sends else None)
        self.raw_tcp(endpoint, fitting)

    # -- real requests --------------------------------------------------------------------

    def ask(
        self, sock: zmq.Socket[bytes], message: Message, codec: Codec, routed: bool = False
    ) -> Message:
        """Send ``message`` on ``sock`` and return the first thing that comes back, which
        must be its reply (nothing sent before it on the same socket may be answered)."""
        frames = codec.encode(message)
        if routed:
            self.send_routed(sock, frames)
        else:
            sock.send_multipart(frames)
        assert sock.poll(10_000), f"no reply to {message.msg_type}"
        got = sock.recv_multipart()
        reply = codec.decode(got[1:] if routed else got)
        assert reply.parent_header.get("msg_id") == message.msg_id, (
            f"an answer to something else before the reply to {message.msg_type}: {reply}"
        )
        return reply

    def request(self, endpoint: object, msg_type: str, ids: tuple[bytes, ...] = ()) -> Message:
        sock = self.socket(zmq.DEALER, endpoint)
        try:
            codec = self.codec_at(endpoint)
            reply = self.ask(sock, codec.message(msg_type, {}, identities=ids), codec)
        finally:
            sock.close()
        assert reply.content["status"] == "ok", reply.content
        return reply

    def node_sockets(self) -> dict[str, dict[str, int]]:
        stats = self.request(self.system.node("alpha").endpoints.shell, "stats_request")
        return stats.content["sockets"]  # type: ignore[no-any-return]

    def forwarder_stats(self) -> dict[str, Any]:
        reply = self.request(self.system.forwarder("tether").endpoints.control, "stats_request")
        return reply.content

    def demo_status(self) -> dict[str, Any]:
        reply = demo_request(self.run, b'{"op": "status"}\n')
        assert reply["status"] == "ok", reply
        return reply

    # -- alive and answering --------------------------------------------------------------

    def all_answer(self) -> None:
        """Every daemon alive, answering, publishing; none restarted."""
        node = self.system.node("alpha").endpoints
        tether = self.system.forwarder("tether").endpoints
        assert self.demo.poll() is None, "the demo exited"
        status = self.demo_status()
        for key, child in status["children"].items():
            assert child["running"], (key, child)
            assert child["ready"], (key, child)
            assert not child["died"], (key, child)
            assert child["pid"] == self.pids[key], f"{key} was restarted"
        # the node: shell, control, hb, pub and iopub
        self.request(node.shell, "kernel_info_request")
        self.request(node.control, "kernel_info_request")
        hb = self.socket(zmq.REQ, node.hb)
        iopub = self.socket(zmq.SUB, node.iopub, SUBSCRIBE=b"")
        try:
            hb.send(b"ping")
            assert hb.poll(10_000), "hb does not echo"
            assert hb.recv() == b"ping"
            until(lambda: self._busy_on_iopub(iopub), what="a request's status on iopub")
        finally:
            hb.close()
            iopub.close()
        self.heartbeats(node.pub, "alpha")
        # the forwarder: control, requests by name, the pub path (the node's and its own)
        self.forwarder_stats()
        self.request(tether.request, "node_info_request", ROUTING)
        self.heartbeats(tether.pub, "alpha", "tether")

    def _busy_on_iopub(self, iopub: zmq.Socket[bytes]) -> bool:
        """Ask the node something, then see its busy status on iopub (the SUB may have
        joined late for the first requests)."""
        self.request(self.system.node("alpha").endpoints.shell, "kernel_info_request")
        while iopub.poll(500):
            msg = self.codec_at(self.system.node("alpha").endpoints.iopub).decode(
                iopub.recv_multipart()
            )
            if msg.msg_type == "status" and msg.content["execution_state"] == "busy":
                return True
        return False

    def heartbeats(self, endpoint: object, *names: str) -> None:
        """Two heartbeats in a row of each of ``names`` on the pub at ``endpoint``."""
        sub = self.socket(zmq.SUB, endpoint)
        for name in names:
            sub.setsockopt(zmq.SUBSCRIBE, f"{name}/hb".encode())
        seqs: dict[str, set[int]] = {name: set() for name in names}

        def flowing() -> bool:
            while sub.poll(100):
                try:
                    beat = self.codec.decode(sub.recv_multipart())
                except SignatureError:  # one the last-value cache replayed, seen before
                    continue
                seqs[beat.content["node"]].add(beat.content["seq"])
            return all(any(s + 1 in got for s in got) for got in seqs.values())

        try:
            until(flowing, what=f"heartbeats of {names} on {endpoint}")
        finally:
            sub.close()


def demo_request(run: Path, data: bytes) -> dict[str, Any]:
    """Raw bytes to the demo's control socket (then end of input); its reply line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect(str(run / "control.sock"))
        conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := conn.recv(65536):
            reply += chunk
    assert reply.endswith(b"\n"), f"no reply line to {data[:40]!r}: {reply[:200]!r}"
    return json.loads(reply)  # type: ignore[no-any-return]


def rejected_by(
    read: Callable[[], dict[str, Any]], before: dict[str, Any], sent: dict[str, int], who: str
) -> dict[str, Any]:
    """Once the stats ``read`` gives show each key's ``rejected`` grown by at least what
    was ``sent`` to it, that it grew by exactly that; returns those stats."""

    def grown() -> dict[str, Any] | None:
        now = read()
        done = all(now[k]["rejected"] - before[k]["rejected"] >= n for k, n in sent.items())
        return now if done else None

    after: dict[str, Any] = until(grown, what=f"the {who} to count {sent}")
    rejected = {k: after[k]["rejected"] - before[k]["rejected"] for k in sent}
    print(f"measured: {who} rejected {rejected}")
    assert rejected == sent
    return after


@pytest.fixture(scope="module")
def vehicle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Vehicle]:
    tmp = tmp_path_factory.mktemp("raw")
    path = tmp / "system.toml"
    path.write_text(
        system_toml(
            sim_node_toml("alpha", {"can0": '[{ kind = "imu", rate_hz = 20 }]'}),
            forwarder_toml("tether"),
            extra=signed_extra(tmp),
        )
    )
    system = load_system(path)
    run = tmp / "run"
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp))
    env.pop("NOTIFY_SOCKET", None)
    argv = ["demo", "--config", str(path), "--run-dir", str(run), "--headless", "--duration", "600"]
    demo = subprocess.Popen(
        [sys.executable, "-m", "rovbus", *argv],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ctx: zmq.Context[Any] = zmq.Context()
    try:
        info = until(lambda: _info(run, demo), timeout=60, what="the demo to start")
        pids = {key: child["pid"] for key, child in info["children"].items()}
        yield Vehicle(system, run, demo, Codec(system.hmac_key(), username="op"), ctx, pids)
        demo.send_signal(signal.SIGTERM)
        out, err = demo.communicate(timeout=30)
        # no process died over the whole module, and the demo exits 0 saying so
        assert demo.returncode == 0, out + err
        assert out.splitlines()[-1] == "result: ok", out
    finally:
        ctx.destroy(linger=0)
        if demo.poll() is None:
            demo.kill()
            demo.communicate()


def _info(run: Path, demo: subprocess.Popen[str]) -> dict[str, Any] | None:
    assert demo.poll() is None, demo.communicate()
    try:
        return json.loads((run / "demo.json").read_text())  # type: ignore[no-any-return]
    except (OSError, ValueError):
        return None


def test_raw_peers_at_every_node_socket(vehicle: Vehicle) -> None:
    v = vehicle
    node = v.system.node("alpha").endpoints
    before = v.node_sockets()
    sent = {ch: v.at_requests(getattr(node, ch), answers=ch != "stdin") for ch in ROUTERS}
    v.at_echo(node.hb)
    v.at_pub(node.pub)
    v.at_pub(node.iopub)

    v.all_answer()
    # every message a peer of a fitting type sent was read and counted as rejected; none
    # was answered (the replies in at_requests came first on their sockets)
    rejected_by(v.node_sockets, before, {**sent, "hb": 2 * len(HB_BAD)}, "node")


def test_raw_peers_at_every_forwarder_socket(vehicle: Vehicle) -> None:
    v = vehicle
    tether = v.system.forwarder("tether").endpoints
    before = v.forwarder_stats()
    sent = {
        "requests": v.at_requests(tether.request, ROUTING),
        "control": v.at_requests(tether.control),
    }
    v.at_pub(tether.pub)
    # the proxy read what the XSUB sent, in order, up to its last message (LONG parts;
    # its counters are libzmq's, in message parts)
    until(
        lambda: (
            v.forwarder_stats()["pub"]["outer_parts_in"] >= before["pub"]["outer_parts_in"] + LONG
        ),
        what="the forwarder's XPUB to read what the XSUB sent",
    )

    v.all_answer()
    after = rejected_by(v.forwarder_stats, before, sent, "forwarder")
    # forwarded: the two requests above and all_answer's; none of the garbage
    assert after["requests"]["forwarded"] == before["requests"]["forwarded"] + 3


#: to the demo's control socket, each on its own connection, then end of input
DEMO_GARBAGE = [
    b"hello\n",  # not JSON
    b"\xff\xfe\xfd\n",  # not UTF-8
    b"[1, 2]\n",  # not an object
    b'{"op": "explode"}\n',
    b'{"op": "kill"}\n',  # no name
    b'{"op": "tether", "action": ["cut"]}\n',
    b"x" * (LINE_LIMIT + 10) + b"\n",  # over the line limit
    b"[" * 50_000 + b"\n",  # nested too deep for the parser
    b"\x00",  # a bare byte, no newline
    b"",  # nothing
]


def test_raw_bytes_at_the_demo_control_socket(vehicle: Vehicle) -> None:
    v = vehicle
    before = v.demo_status()["control"]
    for data in DEMO_GARBAGE:
        reply = demo_request(v.run, data)
        assert reply["status"] == "error", (data[:40], reply)
        assert reply["error"], data[:40]
    silent = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # connects, says nothing
    silent.connect(str(v.run / "control.sock"))
    try:
        v.all_answer()
    finally:
        silent.close()
    after = v.demo_status()["control"]
    print(f"measured: demo control refused {after['refused'] - before['refused']}")
    assert after["refused"] >= before["refused"] + len(DEMO_GARBAGE), (before, after)
