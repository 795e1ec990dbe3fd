"""``execute_request``, its questions on stdin, and the side effects of requests.

A request's side effects (``status`` busy/idle, ``execute_input``, ``stream``,
``execute_result``, ``error``) go on ``<node>/status`` on pub (rovbus tools) and on the
JSON iopub (Jupyter), parented to it. ``execute`` runs one console command
(rovbus/node/console.py); a command that needs an answer asks on stdin, and only the
client asked may answer: the ROUTER identities its request had, in the request's session.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from rovbus.errors import CommandError, ShuttingDown
from rovbus.node.console import ConsoleTarget, run_command
from rovbus.transport import Channel, Publisher
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message, error_content
from rovbus.wire.topics import status_topic

__all__ = ["INPUT_TIMEOUT", "Executor", "SideEffects"]

#: seconds a question on stdin waits for its answer
INPUT_TIMEOUT = 60.0


class SideEffects:
    """What requests cause, on every publisher of node ``node`` (pub, and iopub if any)."""

    def __init__(self, node: str, publishers: dict[str, Publisher]) -> None:
        self.topic = status_topic(node)
        self.publishers = publishers

    def publish(self, msg_type: str, content: dict[str, Any], parent: Message | None) -> None:
        for publisher in self.publishers.values():
            publisher.publish(self.topic, msg_type, content, parent=parent)

    def status(self, execution_state: str, parent: Message | None = None) -> None:
        """``status`` with ``execution_state`` (starting, busy, idle, stopping)."""
        self.publish("status", {"execution_state": execution_state}, parent)


@dataclass(frozen=True, slots=True)
class _Question:
    """A question the node asked on stdin: who was asked, and the answer to come."""

    identities: tuple[bytes, ...]  # the asking request's ROUTER identities
    session: str  # the asking request's header session
    answer: asyncio.Future[str]


class Executor:
    """Runs ``execute_request`` on ``target`` (the node); asks on ``channels["stdin"]``."""

    def __init__(
        self,
        target: ConsoleTarget,
        codec: Codec,
        channels: dict[str, Channel],
        effects: SideEffects,
    ) -> None:
        self.target = target
        self.codec = codec
        self.channels = channels
        self.effects = effects
        self.execution_count = 0
        self._questions: dict[str, _Question] = {}  # open questions on stdin, by msg_id

    async def execute(self, request: Message) -> dict[str, Any]:
        """The ``execute_request`` handler: one console command, its side effects."""
        self.execution_count += 1
        count = self.execution_count
        code = request.content.get("code", "")
        if not isinstance(code, str):
            raise ValueError("execute_request 'code' must be a string")
        self.effects.publish("execute_input", {"code": code, "execution_count": count}, request)
        allow_stdin = bool(request.content.get("allow_stdin", False))

        async def ask(prompt: str) -> str:
            return await self._ask(request, prompt)

        try:
            outcome = await run_command(self.target, code, ask if allow_stdin else None, request)
        except CommandError as exc:
            failure = error_content(exc)
            self.effects.publish(
                "error", {k: failure[k] for k in ("ename", "evalue", "traceback")}, request
            )
            return {**failure, "execution_count": count}
        if outcome.stdout:
            self.effects.publish("stream", {"name": "stdout", "text": outcome.stdout}, request)
        if outcome.result is not None:
            self.effects.publish(
                "execute_result",
                {"execution_count": count, "data": {"text/plain": outcome.result}, "metadata": {}},
                request,
            )
        return {"status": "ok", "execution_count": count, "user_expressions": {}, "payload": []}

    async def _ask(self, request: Message, prompt: str) -> str:
        question = self.codec.message(
            "input_request",
            {"prompt": prompt, "password": False},
            parent=request,
            identities=request.identities,
            serializer=request.serializer,
        )
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._questions[question.msg_id] = _Question(
            request.identities, request.header["session"], future
        )
        try:
            await self.channels["stdin"].send(question)
            async with asyncio.timeout(INPUT_TIMEOUT):
                return await future
        except TimeoutError:
            raise CommandError(f"no answer on stdin within {INPUT_TIMEOUT:g} s") from None
        finally:
            self._questions.pop(question.msg_id, None)

    async def on_stdin(self, message: Message) -> None:
        """An ``input_reply`` answers the open question it belongs to; the rest is ignored."""
        if message.msg_type != "input_reply":
            return
        future = self._question_for(message)
        value = message.content.get("value")
        if future is not None and not future.done():
            future.set_result(value if isinstance(value, str) else "")

    def _question_for(self, reply: Message) -> asyncio.Future[str] | None:
        """The open question ``reply`` answers, if any. Only the client asked may answer:
        on stdin the ROUTER identity its request had on shell, in the request's session;
        its reply answers the question its parent names or, without a parent (as
        jupyter_client sends it), its open question. Anyone else's reply answers nothing."""
        parent_id = reply.parent_header.get("msg_id")
        session = reply.header.get("session")
        for msg_id, question in self._questions.items():
            if question.identities != reply.identities or question.session != session:
                continue
            if parent_id is None or parent_id == msg_id:
                return question.answer
        return None

    def abandon(self, node: str) -> None:
        """The node stops reading stdin: every open question fails with ``ShuttingDown``."""
        for question in self._questions.values():
            if not question.answer.done():
                question.answer.set_exception(
                    ShuttingDown(
                        f"node {node} is shutting down: its question on stdin will not "
                        "be answered, and the command stopped there"
                    )
                )

    def cancel(self) -> None:
        """Cancel every open question (the node is closing)."""
        for question in self._questions.values():
            question.answer.cancel()
