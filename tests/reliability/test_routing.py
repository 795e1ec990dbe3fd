"""Requests by node name through a forwarder, with node and forwarder in this process.

tests/forwarder runs them as processes; here they run on threads of the test process (the
forwarder's outer side on ``inproc://`` endpoints), so that a fault planted in the router
(mutation testing, docs/reliability.md) meets these tests. The client is a raw DEALER on
the forwarder's request endpoint, sending ``[node, channel, <IDS|MSG>, ...]`` as a client
outside would.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from rovbus.config import load_system
from rovbus.forwarder import routing
from rovbus.forwarder.daemon import ForwarderDaemon
from rovbus.forwarder.routing import RequestRouter
from rovbus.forwarder.topology import topology_of
from rovbus.node.daemon import NodeDaemon
from rovbus.wire.codec import DELIMITER, Codec
from rovbus.wire.message import Message
from rovbus.wire.serializers import Serializer
from tests.helpers.systemfile import forwarder_toml, node_toml
from tests.reliability.threads import (
    DaemonThread,
    Hold,
    collect,
    dealer,
    inproc,
    signed_extra,
    start_codec,
    until,
)

TIMEOUT = 1.5  # the forwarder's request timeout: long enough for a node under load


@dataclass
class Routed:
    """Node alpha (maybe not running) behind forwarder tether; a client on its request
    endpoint."""

    fwd: DaemonThread
    node: DaemonThread | None
    sock: zmq.Socket[bytes]
    codec: Codec
    hold: Hold

    @property
    def router(self) -> Any:
        router = self.fwd.daemon.router
        assert router is not None
        return router

    @property
    def stats(self) -> Any:
        return self.router.stats

    def send(
        self,
        msg_type: str,
        to: tuple[bytes, ...],
        content: dict[str, Any] | None = None,
        serializer: Serializer | None = None,
    ) -> Message:
        request = self.codec.message(msg_type, content or {}, identities=to, serializer=serializer)
        self.sock.send_multipart(self.codec.encode(request))
        return request

    def ask(
        self,
        msg_type: str,
        to: tuple[bytes, ...],
        content: dict[str, Any] | None = None,
        serializer: Serializer | None = None,
    ) -> Message:
        """Send a request and return its one reply."""
        request = self.send(msg_type, to, content, serializer)
        (reply,) = collect(self.sock, self.codec, 1)
        assert reply.parent_header["msg_id"] == request.msg_id
        return reply

    def quiet(self) -> bool:
        """Nothing more came back within the forwarder's timeout."""
        return not self.sock.poll(int(TIMEOUT * 1000))


SHELL = (b"alpha", b"shell")
CONTROL = (b"alpha", b"control")
JSON = Serializer.JSON


@contextlib.contextmanager
def routed(
    write_system: Callable[..., Path],
    tmp_path: Path,
    *,
    signed: bool = False,
    node: bool = True,
    answers: bool = True,
    timeout: float = TIMEOUT,
) -> Iterator[Routed]:
    """``node``: alpha runs (and reads and answers requests if ``answers``)."""
    extra = signed_extra(tmp_path) if signed else ""
    # the node on TCP (it has a context of its own), the forwarder's outer side inproc
    fwd_table = inproc(forwarder_toml("tether"))
    path = write_system(node_toml("alpha", iopub=False), fwd_table, extra=extra)
    system = load_system(path)
    hold = Hold()
    node_thread = None
    if node:
        daemon = NodeDaemon(system, "alpha")
        daemon.add_handler("hold_request", hold)
        node_thread = DaemonThread(daemon, serve=answers)
    fwd = DaemonThread(ForwarderDaemon(system, "tether", request_timeout=timeout), serve=True)
    assert fwd.daemon.context is not None
    ep = fwd.daemon.config.endpoints
    codec = Codec(system.hmac_key(), username="op")
    if signed:  # requests to alpha are signed with the key of its current start
        blocking = zmq.Context.shadow(fwd.daemon.context.underlying)
        codec = start_codec(blocking, str(ep.pub), codec, "alpha")
    sock = dealer(fwd.daemon.context, ep.request)
    try:
        yield Routed(fwd, node_thread, sock, codec, hold)
    finally:
        with contextlib.suppress(AssertionError):
            hold.release()
        sock.close()
        fwd.join()
        if node_thread is not None:
            node_thread.join()


def test_shell_and_control_by_name_reach_the_node_s_shell_and_control(
    write_system: Callable[..., Path], tmp_path: Path
) -> None:
    with routed(write_system, tmp_path) as r:
        info = r.ask("kernel_info_request", SHELL)
        assert info.identities == ()  # the reply comes back as sent: no routing frame left
        assert info.content["banner"].startswith("rovbus ")
        assert "node 'alpha'" in info.content["banner"]
        # tx_off is a control request: the node's shell does not know it
        on_shell = r.ask("tx_off_request", SHELL)
        assert on_shell.content["status"] == "error"
        assert r.node is not None
        assert r.node.daemon.ports["can0"].tx_enabled  # type: ignore[union-attr]
        off = r.ask("tx_off_request", CONTROL, {"reason": "routed"})
        assert off.content == {"status": "ok", "tx_enabled": False}
        assert not r.node.daemon.ports["can0"].tx_enabled  # type: ignore[union-attr]
        stats = until(lambda: r.stats.replies == 3 and r.stats, what="3 replies counted")
        assert (stats.requests, stats.forwarded, stats.errors) == (3, 3, 0)
        assert stats.per_node == {"alpha": 3}
        # what `rovbus stats` shows of them: the forwarder's stats_reply
        assert r.fwd.daemon.context is not None
        control = dealer(r.fwd.daemon.context, r.fwd.daemon.config.endpoints.control)
        try:
            control.send_multipart(r.codec.encode(r.codec.message("stats_request")))
            (reply,) = collect(control, r.codec, 1)
        finally:
            control.close()
        assert reply.content["requests"] == {
            "requests": 3,
            "forwarded": 3,
            "replies": 3,
            "errors": 0,
            "unknown_node": 0,
            "unreachable": 0,
            "timeouts": 0,
            "late_replies": 0,
            "rejected": 0,
            "per_node": {"alpha": 3},
        }


def test_what_cannot_be_routed_is_answered_with_an_error_naming_why(
    write_system: Callable[..., Path], tmp_path: Path
) -> None:
    with routed(write_system, tmp_path) as r:
        stdin = r.ask("kernel_info_request", (b"alpha", b"stdin"))
        assert stdin.content["ename"] == "RouteError"
        assert stdin.content["evalue"] == "channel 'stdin' is not routed; use shell or control"
        nobody = r.ask("kernel_info_request", (b"nobody", b"shell"), serializer=JSON)
        assert nobody.serializer is JSON  # answered as asked
        assert nobody.content["ename"] == "UnknownNode"
        assert nobody.content["evalue"] == (
            "no node 'nobody' behind forwarder tether (inner group 'vehicle'); known nodes: alpha"
        )
        bare = r.ask("kernel_info_request", ())
        assert bare.content["ename"] == "RouteError"
        assert (
            "needs two routing frames before the delimiter: [node, channel]"
            in (bare.content["evalue"])
        )
        # routing frames that are not UTF-8: named as well as they can be, and answered
        garbled = r.ask("kernel_info_request", (b"\xffalpha", b"shell"))
        assert garbled.content["evalue"].startswith("no node '\ufffdalpha' behind forwarder")
        odd_channel = r.ask("kernel_info_request", (b"alpha", b"sh\xffell"))
        assert odd_channel.content["evalue"] == (
            "channel 'sh\ufffdell' is not routed; use shell or control"
        )
        for reply in (stdin, nobody, bare, garbled, odd_channel):
            assert reply.msg_type == "kernel_info_reply"
            assert reply.content["status"] == "error"
        stats = r.stats
        assert (stats.requests, stats.forwarded, stats.unknown_node, stats.errors) == (5, 0, 2, 5)
        assert r.quiet()


def test_a_node_that_does_not_answer_in_time_gets_its_request_an_error_and_its_late_reply_dropped(
    write_system: Callable[..., Path], tmp_path: Path
) -> None:
    with routed(write_system, tmp_path) as r:
        reply = r.ask("hold_request", SHELL)
        assert r.hold.entered.is_set()
        assert reply.content["ename"] == "NodeUnreachable"
        assert reply.content["evalue"] == (
            f"node 'alpha' did not answer hold_request on shell within {TIMEOUT:g} s "
            "(forwarder tether)"
        )
        r.hold.release()
        until(lambda: r.stats.late_replies == 1, what="the late reply counted")
        assert r.quiet()  # and not passed on
        again = r.ask("kernel_info_request", SHELL)  # the way is still open
        assert again.content["status"] == "ok"
        stats = until(lambda: r.stats.replies == 1 and r.stats, what="the reply counted")
        assert (stats.timeouts, stats.errors) == (1, 1)


def test_late_replies_are_each_counted_and_none_passed_on(
    write_system: Callable[..., Path], tmp_path: Path
) -> None:
    with routed(write_system, tmp_path) as r:
        # both wait at the node (one client's requests run in order) past the timeout
        assert r.ask("hold_request", SHELL).content["ename"] == "NodeUnreachable"
        assert r.ask("hold_request", SHELL).content["ename"] == "NodeUnreachable"
        r.hold.entered.clear()
        r.hold.release()  # the first; then the second is held in its turn
        until(r.hold.entered.is_set, what="the second request held")
        r.hold.release()
        until(lambda: r.stats.late_replies == 2, what="both late replies counted")
        assert r.quiet()  # and neither passed on
        assert (r.stats.timeouts, r.stats.replies) == (2, 0)


def test_a_restarted_node_s_requests_are_verified_with_its_new_start_key(
    write_system: Callable[..., Path], tmp_path: Path
) -> None:
    with routed(write_system, tmp_path, signed=True) as r:
        assert r.node is not None
        first = r.node.daemon.codec.session
        until(lambda: r.router.session_of("alpha") == first, what="the first start heard")
        assert r.ask("kernel_info_request", SHELL).header["session"] == first
        r.node.join()
        restarted = DaemonThread(NodeDaemon(r.fwd.daemon.system, "alpha"), serve=True)
        try:
            session = restarted.daemon.codec.session
            until(lambda: r.router.session_of("alpha") == session, what="the new start heard")
            assert r.fwd.daemon.context is not None
            blocking = zmq.Context.shadow(r.fwd.daemon.context.underlying)
            pub = str(r.fwd.daemon.config.endpoints.pub)
            key = r.fwd.daemon.system.hmac_key()
            r.codec = start_codec(blocking, pub, Codec(key, username="op"), "alpha")
            reply = r.ask("kernel_info_request", SHELL)
            assert reply.content["status"] == "ok"
            assert reply.header["session"] == session
        finally:
            restarted.join()


def test_the_request_timeout_must_be_positive(write_system: Callable[..., Path]) -> None:
    system = load_system(write_system(node_toml("alpha"), forwarder_toml("tether")))
    ctx = zmq.asyncio.Context()
    outer = ctx.socket(zmq.ROUTER)
    try:
        topology = topology_of(system, "tether")
        for bad in (0, -0.5):
            with pytest.raises(ValueError, match=f"must be positive, got {bad}$"):
                RequestRouter(ctx, "tether", topology, Codec(), outer, timeout=bad)
        assert RequestRouter(ctx, "tether", topology, Codec(), outer, timeout=0.5).timeout == 0.5
    finally:
        outer.close(0)
        ctx.term()


def test_a_node_not_connected_gets_its_request_an_error_at_the_timeout(
    write_system: Callable[..., Path], tmp_path: Path
) -> None:
    with routed(write_system, tmp_path, node=False) as r:
        reply = r.ask("kernel_info_request", CONTROL)
        assert reply.content["ename"] == "NodeUnreachable"
        assert reply.content["evalue"] == (
            f"node 'alpha' has not been connected to forwarder tether for {TIMEOUT:g} s (down or "
            "unreachable); request kernel_info_request not sent"
        )
        assert r.ask("kernel_info_request", SHELL).content["ename"] == "NodeUnreachable"
        stats = r.stats
        assert (stats.unreachable, stats.forwarded, stats.errors) == (2, 0, 2)


def test_with_a_key_only_requests_signed_for_the_node_s_start_go_in(
    write_system: Callable[..., Path], tmp_path: Path
) -> None:
    with routed(write_system, tmp_path, signed=True) as r:
        system_signed = Codec(r.fwd.daemon.system.hmac_key(), username="op")
        unsigned = Codec(username="op")
        for codec in (system_signed, unsigned):  # neither is the start key of alpha
            request = codec.message("kernel_info_request", identities=SHELL)
            r.sock.send_multipart(codec.encode(request))
        until(lambda: r.stats.rejected == 2, what="both dropped and counted")
        good = r.codec.message("kernel_info_request", identities=SHELL)
        frames = r.codec.encode(good)
        r.sock.send_multipart(frames)
        (reply,) = collect(r.sock, r.codec, 1)
        assert reply.parent_header["msg_id"] == good.msg_id
        assert reply.content["status"] == "ok"
        r.sock.send_multipart(frames)  # the same again: a replay
        until(lambda: r.stats.rejected == 3, what="the replay dropped and counted")
        assert r.quiet()  # nothing it could not verify was answered
        stats = r.stats
        assert (stats.requests, stats.forwarded, stats.replies) == (4, 1, 1)


def test_a_request_signed_but_unreadable_is_answered_and_what_cannot_be_verified_never(
    write_system: Callable[..., Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="rovbus.forwarder.routing")
    with routed(write_system, tmp_path, signed=True) as r:
        request = r.codec.message("kernel_info_request", identities=SHELL, serializer=JSON)
        frames = r.codec.encode(request)
        at = frames.index(DELIMITER)
        # a client's bug: content that is not JSON, signed with the right key
        body = [*frames[at + 2 : at + 5], b"{not json"]
        unreadable = [*frames[:at], DELIMITER, r.codec.signer.sign(body), *body]
        until(lambda: r.router.session_of("alpha"), what="the forwarder has heard alpha's start")
        r.sock.send_multipart(unreadable)
        (reply,) = collect(r.sock, r.codec, 1)
        assert (reply.msg_type, reply.serializer) == ("kernel_info_reply", JSON)
        assert reply.parent_header["msg_id"] == request.msg_id
        assert reply.content["status"] == "error"
        assert reply.content["ename"] == "EnvelopeError"
        # four frames after the delimiter: no signature can be checked, so no answer
        r.sock.send_multipart(unreadable[:-1])
        # a readable request whose signature is not the node's start key's
        forged = r.codec.encode(r.codec.message("kernel_info_request", identities=SHELL))
        forged[forged.index(DELIMITER) + 1] = b"0" * 64
        r.sock.send_multipart(forged)
        r.sock.send_multipart(unreadable)  # a replay
        until(lambda: r.stats.rejected == 4, what="all four counted")
        assert r.quiet()
        stats = r.stats
        assert (stats.requests, stats.forwarded, stats.errors) == (4, 0, 1)
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "rovbus.forwarder.routing"]
    assert logged == [  # one line per kind of fault and 10 s, the others counted
        f"tether: a bad request: {reply.content['evalue']}",
        "tether: dropped a request: invalid signature",
    ]


def test_a_request_for_a_node_that_connects_within_the_timeout_goes_in_once_it_does(
    write_system: Callable[..., Path], tmp_path: Path
) -> None:
    with routed(write_system, tmp_path, node=False, timeout=30.0) as r:
        request = r.send("kernel_info_request", SHELL)
        until(lambda: r.stats.requests == 1, what="the request read")
        node = DaemonThread(NodeDaemon(r.fwd.daemon.system, "alpha"), serve=True)
        try:
            (reply,) = collect(r.sock, r.codec, 1)
        finally:
            node.join()
        assert reply.parent_header["msg_id"] == request.msg_id
        assert reply.content["status"] == "ok"
        stats = until(lambda: r.stats.replies == 1 and r.stats, what="the reply counted")
        assert (stats.forwarded, stats.unreachable, stats.errors) == (1, 0, 0)
        assert stats.per_node == {"alpha": 1}
        assert not r.router._tasks  # nothing kept of the wait once it is over


def test_beyond_max_pending_the_oldest_request_gets_its_error_at_once(
    write_system: Callable[..., Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(routing, "MAX_PENDING", 2)
    with routed(write_system, tmp_path, answers=False, timeout=60.0) as r:
        sent = []
        for _ in range(4):  # alpha is connected and reads nothing: all wait for a reply
            request = r.codec.message("kernel_info_request", identities=SHELL, serializer=JSON)
            r.sock.send_multipart(r.codec.encode(request))
            sent.append(request)
        replies = collect(r.sock, r.codec, 2)
        assert [reply.parent_header["msg_id"] for reply in replies] == [m.msg_id for m in sent[:2]]
        for reply in replies:
            assert reply.serializer is JSON
            assert reply.content["evalue"] == (
                "node 'alpha' did not answer kernel_info_request on shell within 60 s "
                "(forwarder tether)"
            )
        stats = r.stats
        assert (stats.forwarded, stats.timeouts, stats.errors) == (4, 2, 2)


def test_a_request_waiting_for_its_node_is_refused_when_the_forwarder_stops(
    write_system: Callable[..., Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rovbus.forwarder.daemon")
    with routed(write_system, tmp_path, node=False, timeout=60.0) as r:
        request = r.send("kernel_info_request", SHELL)
        until(lambda: r.stats.requests == 1, what="the request read")
        stats = r.stats  # the router goes with the forwarder
        r.fwd.stop()
        (reply,) = collect(r.sock, r.codec, 1)
        assert reply.parent_header["msg_id"] == request.msg_id
        assert (reply.content["ename"], reply.msg_type) == ("ShuttingDown", "kernel_info_reply")
        assert "forwarder tether" in reply.content["evalue"]
        assert "not carried out" in reply.content["evalue"]
        assert (stats.forwarded, stats.errors) == (0, 1)
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "rovbus.forwarder.daemon"]
    assert "tether: answered 1 request(s) left at shutdown" in logged
