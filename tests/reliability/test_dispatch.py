"""Requests of several clients at once: one client's slow request (a question on stdin, a
long handler) never delays another's, and each client's own requests stay in order."""

from __future__ import annotations

from collections.abc import Callable

import zmq

from rovbus.wire.message import Message
from tests.helpers.waiting import until
from tests.reliability.threads import Hold, NodeThread, Peer, collect, dealer


def test_a_prompt_left_open_delays_no_other_client(
    node_thread: Callable[..., NodeThread],
) -> None:
    """One operator's ``tx on`` waits for an answer on stdin; meanwhile another sends 100
    ``can_send`` requests: every one is answered, in the order sent, while the question
    is still open; then the first operator answers and gets its reply."""
    node = node_thread()
    peer = Peer(node, node.daemon.codec)
    ep = node.daemon.config.endpoints
    asker, stdin = dealer(peer.ctx, ep.shell, b"op-1"), dealer(peer.ctx, ep.stdin, b"op-1")
    sender = dealer(peer.ctx, ep.shell, b"op-2")
    try:
        peer.request("tx_off_request", channel="control")
        execute = peer.codec.message("execute_request", {"code": "tx on", "allow_stdin": True})
        asker.send_multipart(peer.codec.encode(execute))
        (question,) = collect(stdin, peer.codec, 1)
        assert question.msg_type == "input_request"

        sends = [
            peer.codec.message("can_send_request", {"bus": "can0", "frames": [f"123#{i:02X}"]})
            for i in range(100)
        ]
        for request in sends:
            sender.send_multipart(peer.codec.encode(request))
        replies = collect(sender, peer.codec, 100)
        # the question is still open: nothing came back to the operator who was asked
        assert not asker.poll(0)
        assert len(replies) == 100, f"{len(replies)} of 100 can_send requests answered"
        assert [r.parent_header["msg_id"] for r in replies] == [r.msg_id for r in sends]
        # transmit is off, so each is refused, by the node, at once
        assert {r.content["ename"] for r in replies} == {"CanRefused"}

        answer = peer.codec.message("input_reply", {"value": "checked"}, parent=question)
        stdin.send_multipart(peer.codec.encode(answer))
        (reply,) = collect(asker, peer.codec, 1)
        assert reply.parent_header["msg_id"] == execute.msg_id
        assert reply.content["status"] == "ok", reply.content
    finally:
        for sock in (asker, stdin, sender):
            sock.close()
        peer.close()


def requests_of(peer: Peer, sock: zmq.Socket[bytes], msg_type: str, n: int) -> list[Message]:
    sent = [peer.codec.message(msg_type, {"n": i}) for i in range(n)]
    for request in sent:
        sock.send_multipart(peer.codec.encode(request))
    return sent


def test_a_client_waits_behind_its_own_slow_request_only(
    node_thread: Callable[..., NodeThread],
) -> None:
    """A handler held for one client: that client's next requests wait behind it, in
    order; another client's are answered meanwhile."""
    node = node_thread()
    hold = Hold()
    node.call(lambda: node.daemon.add_handler("hold_request", hold))
    peer = Peer(node, node.daemon.codec)
    ep = node.daemon.config.endpoints
    slow, other = dealer(peer.ctx, ep.shell, b"slow"), dealer(peer.ctx, ep.shell, b"other")
    try:
        (held,) = requests_of(peer, slow, "hold_request", 1)
        assert hold.entered.wait(10)
        behind = requests_of(peer, slow, "kernel_info_request", 3)
        others = requests_of(peer, other, "kernel_info_request", 3)
        answered = collect(other, peer.codec, 3)
        assert [r.parent_header["msg_id"] for r in answered] == [r.msg_id for r in others]
        assert not slow.poll(0)  # still behind its held request
        hold.release()
        mine = collect(slow, peer.codec, 4)
        assert [r.parent_header["msg_id"] for r in mine] == [r.msg_id for r in [held, *behind]]
    finally:
        slow.close()
        other.close()
        peer.close()


def test_a_retry_of_a_request_in_hand_is_not_carried_out_twice(
    node_thread: Callable[..., NodeThread],
) -> None:
    """A client retries on a fresh socket (Lazy Pirate) while its request is still being
    carried out: the retry gets the same reply, and the handler ran once."""
    node = node_thread()
    hold = Hold()
    calls: list[str] = []

    async def counted(request: Message) -> dict[str, object]:
        calls.append(request.msg_id)
        return await hold(request)

    node.call(lambda: node.daemon.add_handler("hold_request", counted))
    peer = Peer(node, node.daemon.codec)
    ep = node.daemon.config.endpoints
    first, retry = dealer(peer.ctx, ep.shell, b"try-1"), dealer(peer.ctx, ep.shell, b"try-2")
    try:
        request = peer.codec.message("hold_request", {})
        first.send_multipart(peer.codec.encode(request))
        assert hold.entered.wait(10)
        retry.send_multipart(peer.codec.encode(request))
        shell = node.daemon.channels["shell"].stats
        until(lambda: shell.messages_in == 2, what="the node to read the retry")
        hold.release()
        (a,) = collect(first, peer.codec, 1)
        (b,) = collect(retry, peer.codec, 1)
        assert a.content == b.content == {"status": "ok", "held": True}
        assert a.parent_header["msg_id"] == b.parent_header["msg_id"] == request.msg_id
        assert calls == [request.msg_id]
    finally:
        first.close()
        retry.close()
        peer.close()
