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
from typing import Any, Protocol

from rovbus.errors import RovbusError
from rovbus.wire.canframe import CanFrame
from rovbus.wire.cantext import format_candump, parse_cansend

#: Asks the operator a question through the stdin channel; returns the answer.
Ask = Callable[[str], Awaitable[str]]


class CommandError(RovbusError):
    """A console command failed; the message is shown to the operator."""


class ConsoleTarget(Protocol):
    """What the console needs from the node."""

    name: str

    def status_line(self) -> str: ...
    def stats(self) -> dict[str, Any]: ...
    def bus_lines(self) -> list[str]: ...
    def recent_frames(self, bus: str, count: int) -> list[CanFrame]: ...
    async def transmit(self, bus: str, frames: Sequence[CanFrame]) -> int: ...
    def set_tx(self, enabled: bool) -> None: ...


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
tx off | tx on        stop transmission at once | enable it again (asks to confirm)"""


async def run_command(target: ConsoleTarget, code: str, ask: Ask | None) -> Outcome:
    """Run one command line. ``ask`` is ``None`` when the client does not allow stdin."""
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
        return await _send(target, args)
    if command == "dump":
        return _dump(target, args)
    if command == "tx":
        return await _tx(target, args, ask)
    raise CommandError(f"unknown command {command!r}; type 'help' for the list")


async def _send(target: ConsoleTarget, args: list[str]) -> Outcome:
    if len(args) < 2:
        raise CommandError("usage: send BUS FRAME [FRAME ...]  (e.g. send can0 123#DEADBEEF)")
    bus, texts = args[0], args[1:]
    try:
        frames = [parse_cansend(text, bus) for text in texts]
        sent = await target.transmit(bus, frames)
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


async def _tx(target: ConsoleTarget, args: list[str], ask: Ask | None) -> Outcome:
    if args == ["off"]:
        target.set_tx(False)
        return Outcome(stdout=f"transmission stopped on every bus of {target.name}\n")
    if args != ["on"]:
        raise CommandError("usage: tx on | tx off")
    if ask is None:
        raise CommandError(
            "tx on needs a confirmation, and this client does not allow input (allow_stdin)"
        )
    answer = await ask(f"Enable transmission on every bus of {target.name}? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        return Outcome(stdout="transmission stays off\n")
    target.set_tx(True)
    return Outcome(stdout=f"transmission enabled on every bus of {target.name}\n")
