"""What the operator commands share: connection options, receive options, the client, a
PUB socket of their own (``bound_pub``).

Only argparse (and the standard library) at module level: ``rovbus --help`` builds every
parser, and must stay fast. The client, zmq and the config layer load in ``run_client``.

Exit status (``rovbus.exitcodes``): 0 ok, 1 a runtime failure (timeout, error reply), 2 a
usage or config error, 130 interrupted (Ctrl-C), without a traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

    import zmq

    from rovbus.client import Client, Received, Subscription
    from rovbus.config import SystemConfig
    from rovbus.config.hosts import Table

from rovbus.exitcodes import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

DEFAULT_CONFIG = "/etc/rovbus/vehicle.toml"

log = logging.getLogger("rovbus.cli")


def default_config() -> str:
    return os.environ.get("ROVBUS_CONFIG") or DEFAULT_CONFIG


def add_connection_args(p: argparse.ArgumentParser) -> None:
    """``--config``, ``--group``, ``--connect``, ``--request``, ``--routed``, ``-v``/``-q``."""
    g = p.add_argument_group("connection")
    g.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        help=f"the system file (default: $ROVBUS_CONFIG, else {DEFAULT_CONFIG})",
    )
    start = g.add_mutually_exclusive_group()
    start.add_argument(
        "--group",
        "-g",
        metavar="NAME",
        help="connect as a member of this group (default: the first group without nodes "
        "that a forwarder serves, such as topside, else the first group with nodes)",
    )
    start.add_argument(
        "--host",
        metavar="NAME",
        help="connect as a program on this host of the system file: a member of every "
        "group it is on (rovbus check-config --host NAME shows what it reaches)",
    )
    g.add_argument(
        "--connect",
        action="append",
        default=[],
        metavar="ENDPOINT",
        help="subscribe to this PUB endpoint instead of the system file's (repeatable)",
    )
    g.add_argument(
        "--request",
        metavar="ENDPOINT",
        help="send requests to this endpoint (a node's shell or control, or a forwarder's "
        "request endpoint with --routed) instead of the system file's",
    )
    g.add_argument(
        "--routed",
        action="store_true",
        help="--request is a forwarder: add the [node, channel] routing frames",
    )
    g.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    g.add_argument("-q", "--quiet", action="store_true", help="log only errors")


def add_daemon_args(p: argparse.ArgumentParser, what: str) -> None:
    """What every daemon command takes: the ``what``'s name, ``--config``, and ``--host``,
    the host it runs on, so it refuses to start on another."""
    p.add_argument("name", help=f"the {what}'s name in the system file")
    p.add_argument("--config", "-c", required=True, metavar="FILE", help="the system file")
    p.add_argument(
        "--host",
        metavar="NAME",
        help=f"the host of the system file this computer is: the {what} refuses to start "
        "when the file puts it on another (default: $ROVBUS_HOST, else the host whose "
        "hostname is this machine's; when none is, it starts anywhere)",
    )


def check_placement(system: SystemConfig, table: Table, name: str, host: str | None) -> None:
    """ConfigError unless the system file puts ``table.name`` on this host (``host``, else
    ``$ROVBUS_HOST``, else the machine's hostname); a warning when no host is this one."""
    from rovbus.config.hosts import require_placement, this_host

    here = this_host(system, host or os.environ.get("ROVBUS_HOST") or None)
    require_placement(system, table, name, here)
    if here.host is None:
        log.warning(
            "%s.%s: not checking which host this is: %s (give --host or $ROVBUS_HOST)",
            table,
            name,
            here.how,
        )


def add_receive_args(p: argparse.ArgumentParser, unit: str = "messages") -> None:
    """``-n/--count``, ``--timeout``, ``--once``."""
    g = p.add_argument_group("receiving")
    g.add_argument("-n", "--count", type=int, metavar="N", help=f"stop after N {unit}")
    g.add_argument(
        "--timeout",
        type=float,
        metavar="SEC",
        help="stop after SEC seconds without a message; exit 1 if --count was not reached "
        "(or nothing arrived)",
    )
    g.add_argument("--once", action="store_true", help="stop after the first one (-n 1)")


def json_object(text: str, command: str) -> dict[str, Any] | None:
    """``text`` (a command's JSON content argument) as a dict; ``None`` when it is not a
    JSON object, the reason printed."""
    import json

    try:
        content = json.loads(text)
    except json.JSONDecodeError as exc:
        print(f"rovbus {command}: JSON content: {exc}", file=sys.stderr)
        return None
    if not isinstance(content, dict):
        print(f"rovbus {command}: JSON content must be an object", file=sys.stderr)
        return None
    return content


def parser_defaults() -> dict[str, Any]:
    return {"formatter_class": argparse.RawDescriptionHelpFormatter}


def setup_logging(args: argparse.Namespace, command: str) -> None:
    level = logging.WARNING
    if getattr(args, "verbose", False):
        level = logging.INFO
    if getattr(args, "quiet", False):
        level = logging.ERROR
    logging.basicConfig(
        level=level, format=f"rovbus {command}: %(message)s", stream=sys.stderr, force=True
    )


def bound_pub(
    endpoint: str, command: str, sndhwm: int | None = None
) -> tuple[zmq.Context[Any], zmq.Socket[Any]] | None:
    """A PUB socket bound at ``endpoint`` (linger 1 s), on a context of its own, for a
    command that publishes (``pub``, ``play``); ``None`` when it cannot bind, the reason
    printed as ``rovbus COMMAND: ...``."""
    import zmq

    from rovbus.errors import TransportError
    from rovbus.transport import bind

    ctx: zmq.Context[Any] = zmq.Context()
    sock: zmq.Socket[Any] = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 1000)
    if sndhwm is not None:
        sock.setsockopt(zmq.SNDHWM, sndhwm)
    try:
        bind(sock, endpoint, "pub")
    except TransportError as exc:
        sock.close(0)
        ctx.term()
        print(f"rovbus {command}: {exc}", file=sys.stderr)
        return None
    return ctx, sock


def make_client(args: argparse.Namespace) -> Client:
    """The client the options describe; raises ConfigError."""
    from rovbus.client import Client

    pub: list[str] = list(getattr(args, "connect", []) or [])
    request: str | None = getattr(args, "request", None)
    routed = bool(getattr(args, "routed", False))
    config = args.config
    if config is None and (pub or request):
        # endpoints by hand: the system file only adds keys, if there is one
        default = default_config()
        if not Path(default).exists():
            return Client.from_endpoints(pub, request, routed=routed)
        config = default
    return Client.from_system(
        config or default_config(),
        getattr(args, "group", None),
        host=getattr(args, "host", None),
        pub=pub,
        request=request,
        routed=routed,
    )


def run_client(
    args: argparse.Namespace, command: str, body: Callable[[Client], Awaitable[int]]
) -> int:
    """Build the client, run ``body`` on an event loop, map errors to exit codes."""
    setup_logging(args, command)
    import asyncio

    from rovbus.errors import (
        ConfigError,
        FrameSyntaxError,
        RequestFailed,
        RequestTimeout,
        RovbusError,
    )

    async def main() -> int:
        client = make_client(args)
        try:
            return await body(client)
        finally:
            await client.aclose()

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(main())
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except ConfigError as exc:
        print(f"rovbus {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except FrameSyntaxError as exc:
        print(f"rovbus {command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (RequestTimeout, RequestFailed) as exc:
        print(f"rovbus {command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except (RovbusError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):  # `rovbus sub | head`: the reader left
            _silence_stdout()
            return EXIT_OK
        print(f"rovbus {command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass


def _loop_factory() -> Callable[[], AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], AbstractEventLoop] = uvloop.new_event_loop
    return factory


def receive_limit(args: argparse.Namespace) -> int | None:
    if getattr(args, "once", False):
        return 1
    count: int | None = getattr(args, "count", None)
    return count


async def receive_loop(
    sub: Subscription,
    args: argparse.Namespace,
    handle: Callable[[Received, int | None], int],
    *,
    duration: float | None = None,
) -> int:
    """Feed ``handle(received, remaining)`` until ``--count`` units (``handle`` returns how
    many it consumed), ``--timeout`` idle seconds, or ``duration`` seconds; the exit code."""
    import asyncio

    limit = receive_limit(args)
    idle: float | None = getattr(args, "timeout", None)
    loop = asyncio.get_running_loop()
    end = None if duration is None else loop.time() + duration
    done = 0
    while limit is None or done < limit:
        wait = idle
        if end is not None:
            left = end - loop.time()
            if left <= 0:
                return EXIT_OK
            wait = left if wait is None else min(wait, left)
        try:
            if wait is None:
                got = await sub.next_received()
            else:
                got = await asyncio.wait_for(sub.next_received(), wait)
        except TimeoutError:
            if end is not None and loop.time() >= end:
                return EXIT_OK
            if limit is not None or done == 0:
                what = f"{done} of {limit}" if limit is not None else "nothing"
                log.error("timed out after %g s without a message (%s received)", idle, what)
                return EXIT_FAILURE
            return EXIT_OK
        done += handle(got, None if limit is None else limit - done)
    return EXIT_OK


async def joined(sub: Subscription, command: str) -> None:
    """Wait until ``sub`` has joined, then log it (tests and scripts wait for this line)."""
    heard = await sub.ready()
    log.info(
        "listening to %s (%d node(s) heard)",
        " ".join(repr(p) for p in sub.prefixes) or "nothing",
        len(heard),
    )
