"""Serving requests on a ROUTER channel: the receive loop every daemon runs per channel.

A bad message never stops the loop: it is counted by the channel, logged at a limited
rate, and, when its header could be read (and its signature did not fail), answered with
an error reply in Jupyter's form. A handler that raises is logged and the loop goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from rovbus.ratelimit import RateLimiter
from rovbus.transport.channel import Channel, Rejected
from rovbus.wire.message import Message, error_content, reply_type


class RequestLoop:
    """Receives on channels and hands good requests to a handler; one per daemon."""

    def __init__(self, logger: logging.Logger, log_interval_s: float = 10.0) -> None:
        self.logger = logger
        self._limit = RateLimiter(log_interval_s)

    async def serve(self, channel: Channel, handle: Callable[[Message], Awaitable[None]]) -> None:
        """Until cancelled: every good message of ``channel`` goes to ``handle``."""
        while True:
            got = await channel.recv()
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
        held = self._limit.allow(f"{channel.name}:{type(rejected.error).__name__}")
        if held is not None:
            self.logger.warning(
                "%s: dropped a bad message: %s (%d more since the last report)",
                channel.name,
                rejected.error,
                held,
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
