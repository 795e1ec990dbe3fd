"""The node's diagnostic command language, run by ``execute_request``.

A Jupyter console (``jupyter console --existing``) or ``rovbus req NODE execute`` types
one command per request; ``HELP`` lists them. Commands print to ``stdout`` (a ``stream``
message) or give a result (``execute_result``); a failing command raises ``CommandError``,
which becomes Jupyter's ``error``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from rovbus.errors import CommandError, RovbusError
from rovbus.node.requests import tx_off_reason, tx_reason
from rovbus.wire.canframe import CanFrame
from rovbus.wire.cantext import format_candump, parse_cansend
from rovbus.wire.contents import NodeStats
from rovbus.wire.message import Message

#: Asks the operator a question through the stdin channel; returns the answer.
Ask = Callable[[str], Awaitable[str]]


class ConsoleTarget(Protocol):
    """What the console needs from the node."""

    name: str

    def status_line(self) -> str: ...
    def stats(self) -> NodeStats: ...
    def bus_lines(self) -> list[str]: ...
    def recent_frames(self, bus: str, count: int) -> list[CanFrame]: ...
    async def transmit(self, bus: str, frames: Sequence[CanFrame], request: Message) -> int: ...
    async def set_tx(self, enabled: bool, reason: str, request: Message) -> None: ...


@dataclass(frozen=True, slots=True)
class Outcome:
    stdout: str = ""
    result: str | None = None


HELP = """\
help                  this list
status                one line: state, uptime, buses
stats                 counters per bus and per socket
buses                 one line per bus: interface, channel, state, tx
send BUS FRAME ...    transmit frames in cansend syntax (send can0 123#DEADBEEF)
dump BUS [N]          the last N frames seen on BUS (default 10), as candump -L lines
tx off [REASON]       stop transmission on every bus at once
tx on [REASON]        transmit again; needs a reason (asked for when not given), which
                      the node logs and publishes on <node>/status with who asked"""


async def run_command(
    target: ConsoleTarget, code: str, ask: Ask | None, request: Message
) -> Outcome:
    """Run one command line of ``request``. ``ask`` is ``None`` when the client does not
    allow stdin."""
    try:
        words = shlex.split(code)
    except ValueError as exc:
        raise CommandError(f"cannot read the command: {exc}") from None
    if not words:
        return Outcome()
    command, args = words[0], words[1:]
    if command == "help":
        return Outcome(stdout=HELP + "\n")
    if command == "status":
        return Outcome(result=target.status_line())
    if command == "stats":
        return Outcome(result=json.dumps(target.stats(), indent=2, sort_keys=True))
    if command == "buses":
        return Outcome(stdout="".join(line + "\n" for line in target.bus_lines()))
    if command == "send":
        return await _send(target, args, request)
    if command == "dump":
        return _dump(target, args)
    if command == "tx":
        return await _tx(target, args, ask, request)
    raise CommandError(f"unknown command {command!r}; type 'help' for the list")


async def _send(target: ConsoleTarget, args: list[str], request: Message) -> Outcome:
    if len(args) < 2:
        raise CommandError("usage: send BUS FRAME [FRAME ...]  (e.g. send can0 123#DEADBEEF)")
    bus, texts = args[0], args[1:]
    try:
        frames = [parse_cansend(text, bus) for text in texts]
        sent = await target.transmit(bus, frames, request)
    except (RovbusError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    return Outcome(stdout=f"sent {sent} frame(s) on {bus}\n")


def _dump(target: ConsoleTarget, args: list[str]) -> Outcome:
    if not 1 <= len(args) <= 2:
        raise CommandError("usage: dump BUS [N]")
    try:
        count = int(args[1]) if len(args) == 2 else 10
    except ValueError:
        raise CommandError(f"dump: N must be a whole number, got {args[1]!r}") from None
    try:
        frames = target.recent_frames(args[0], count)
    except (RovbusError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    return Outcome(stdout="".join(format_candump(f) + "\n" for f in frames))


async def _tx(target: ConsoleTarget, args: list[str], ask: Ask | None, request: Message) -> Outcome:
    if not args or args[0] not in ("on", "off"):
        raise CommandError("usage: tx off [REASON] | tx on [REASON]")
    given = " ".join(args[1:])
    if args[0] == "off":
        await target.set_tx(False, tx_off_reason(given), request)
        return Outcome(stdout=f"transmission stopped on every bus of {target.name}\n")
    if not given:
        if ask is None:
            raise CommandError(
                "tx on needs a reason: type 'tx on REASON', or use a client that allows "
                "input (allow_stdin) to be asked for one"
            )
        given = await ask(
            f"Why may {target.name} transmit again on every bus? (logged and published "
            "with your name; empty: cancel) "
        )
        if not given.strip():
            return Outcome(stdout="cancelled: transmission not changed\n")
    try:
        reason = tx_reason(given, required=True)
    except ValueError as exc:
        raise CommandError(f"tx on: {exc}") from None
    await target.set_tx(True, reason, request)
    return Outcome(stdout=f"transmission enabled on every bus of {target.name}: {reason}\n")
