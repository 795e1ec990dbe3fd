"""Serving requests on a ROUTER channel: the receive loop every daemon runs per channel.

A bad message never stops the loop: it is counted by the channel, logged at a limited
rate, and, when its header could be read (and its signature did not fail), answered with
an error reply in Jupyter's form. A handler that raises is logged and the loop goes on.

Stopping, in the order a daemon follows (docs/architecture.md, Design rules: stop intake,
drain with a deadline, close):

1. ``RequestLoop.stop`` stops intake: each ``serve`` returns once the message in hand is
   handed over; none reads another. The wait for a message is a poll, which takes nothing
   off the queue, so stopping loses no message (cancelling a receive can).
2. The daemon lets the requests in hand finish within its drain deadline (the
   dispatcher's, rovbus/daemon/dispatch.py, which also answers the ones it cut off and
   the ones it had queued).
3. Before closing its channels, ``refuse_queued`` answers, without acting on them, what
   each ROUTER still holds, read without blocking (at most ``DRAIN_LIMIT`` per channel,
   until a deadline). The answer is an error reply with ``ename`` ``ShuttingDown`` naming
   the daemon (``refusal``), or what the daemon's ``answered`` gives (the reply already
   given to the same ``msg_id``: a client's retry of a request that was carried out).
   Bad messages go through ``reject`` as always.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from rovbus.errors import ShuttingDown
from rovbus.ratelimit import RateLimiter
from rovbus.transport.channel import Channel, Rejected
from rovbus.transport.intake import Intake, read_now
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message, error_content, reply_type

__all__ = [
    "DRAIN_DEADLINE",
    "DRAIN_LIMIT",
    "Outcome",
    "RequestLoop",
    "refusal",
]

#: what ``refuse_queued`` reads of one channel at most, and for how long (seconds)
DRAIN_LIMIT = 1000
DRAIN_DEADLINE = 0.25


#: what became of a request a stopping daemon refuses: ``refused``, never acted on;
#: ``interrupted``, cut off midway (this copy or an earlier one with its msg_id);
#: ``forwarded``, an earlier copy went on to its node and no reply came back in time
Outcome = Literal["refused", "interrupted", "forwarded"]


def refusal(codec: Codec, request: Message, who: str, outcome: Outcome = "refused") -> Message:
    """The ``ShuttingDown`` error reply to ``request`` from ``who`` (``"node alpha"``)."""
    kind = request.msg_type
    if outcome == "interrupted":
        why = (
            f"{who} stopped while carrying out {kind}: it was interrupted and may have been "
            "partly carried out"
        )
    elif outcome == "forwarded":
        why = (
            f"{who} is shutting down: {kind} was forwarded to its node and no reply came "
            "back in time; it may have been carried out"
        )
    else:
        why = f"{who} is shutting down: {kind} was not carried out"
    content = error_content(ShuttingDown(why))
    return codec.reply(request, reply_type(request.msg_type), content)


class RequestLoop:
    """Receives on channels and hands good requests to a handler; one per daemon."""

    def __init__(self, logger: logging.Logger, log_interval_s: float = 10.0) -> None:
        self.logger = logger
        self._limit = RateLimiter(log_interval_s)
        self.intake = Intake(logger, log_interval_s)

    def stop(self) -> None:
        """Stop intake: each ``serve`` returns once the message in hand is handed over."""
        self.intake.stop()

    async def serve(self, channel: Channel, handle: Callable[[Message], Awaitable[None]]) -> None:
        """Every good message of ``channel`` goes to ``handle``, until ``stop``."""
        while (
            frames := await self.intake.next(channel.socket, channel.stats, channel.name)
        ) is not None:
            got = channel.decode(frames)
            if isinstance(got, Rejected):
                await self.reject(channel, got)
                continue
            try:
                await handle(got)
            except Exception:  # a handler bug must not stop the daemon
                self.logger.exception(
                    "%s: unhandled error answering %s", channel.name, got.msg_type
                )

    async def reject(self, channel: Channel, rejected: Rejected) -> None:
        self._limit.log(
            self.logger,
            logging.WARNING,
            f"{channel.name}:{type(rejected.error).__name__}",
            "%s: dropped a bad message: %s",
            channel.name,
            rejected.error,
        )
        if rejected.header is None:
            return
        request = Message(
            header=rejected.header, identities=rejected.identities, serializer=rejected.serializer
        )
        content = error_content(rejected.error)
        await channel.send(
            channel.codec.reply(request, reply_type(rejected.header["msg_type"]), content)
        )

    async def refuse_queued(
        self,
        channel: Channel,
        who: str,
        *,
        answered: Callable[[Message], Message | None] | None = None,
        answer: bool = True,
        until: float | None = None,
        limit: int = DRAIN_LIMIT,
    ) -> int:
        """Answer what ``channel`` holds without acting on it; return how many were answered.

        Every message already queued, read without blocking: at most ``limit``, until the
        monotonic time ``until`` (default: ``DRAIN_DEADLINE`` from now). A good message
        gets ``answered(request)`` when that gives a reply (the daemon's dispatcher: the
        one already sent to the same ``msg_id``, or a refusal saying it was cut off), else
        ``refusal``. ``answer=False`` (stdin, which receives replies) reads and counts
        without answering. Call it after the loops have stopped and before closing the
        channel."""
        if until is None:
            until = time.monotonic() + DRAIN_DEADLINE
        count = 0
        for _ in range(limit):
            if channel.socket.closed or time.monotonic() >= until:
                break
            frames = await read_now(channel.socket)
            if frames is None:
                break
            got = channel.decode(frames)
            if isinstance(got, Rejected):
                await self.reject(channel, got)
                continue
            if not answer:
                continue
            reply = answered(got) if answered is not None else None
            if reply is None:
                reply = refusal(channel.codec, got, who)
            await channel.send(reply)
            count += 1
        return count
