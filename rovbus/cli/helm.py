"""``rovbus helm NODE [BUS]``: take the helm and send the cansend lines read on stdin."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import add_connection_args, parser_defaults, run_client
from rovbus.exitcodes import EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from rovbus.client import Client

EPILOG = """\
examples:
  rovbus helm propulsion can0                    # then type: 201#E803 (thruster 1 to 1000 rpm)
  joystick-to-cansend | rovbus helm propulsion can0
  printf '201#E803 202#E803\\n' | rovbus helm propulsion can0
  rovbus helm propulsion --status                # who holds it, lease left, failsafe
  rovbus helm propulsion can0 --force --reason "pilot's laptop froze"

Each line holds one or more frames in cansend syntax, sent in one request; frames to helm
IDs renew the lease, and an empty line renews it without new setpoints. Nothing else
renews it: when no line comes within the bus's lease_ms (a hung program, a frozen pipe),
the lease runs out and the node writes its failsafe frames. EOF or Ctrl-C releases the
helm (the node writes the failsafe frames too). Stopping never needs the helm: see
rovbus stop. Exit status: 0 released, 1 refused, lost or no reply, 2 bad arguments.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "helm",
        help="take the helm of a node and send the setpoints read on stdin",
        description=(
            "Take the helm of NODE (every bus of it with a helm, or BUS) and transmit the "
            "cansend lines read on stdin, one request per line."
        ),
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("node", metavar="NODE")
    p.add_argument("bus", metavar="BUS", nargs="?", help="the bus (default: every helm bus)")
    p.add_argument("--status", action="store_true", help="show who holds the helm, and exit")
    p.add_argument("--force", action="store_true", help="take the helm over from its holder")
    p.add_argument("--reason", metavar="TEXT", default="", help="why (needed with --force)")
    add_connection_args(p)


def status_lines(node: str, buses: dict[str, Any]) -> list[str]:
    """One line per helm bus of a ``helm_status`` reply (also for ``rovbus stop``)."""
    import time

    lines = []
    for bus, state in sorted(buses.items()):
        if state.get("holder"):
            since = time.strftime("%H:%M:%S", time.gmtime(state["since"]))
            line = (
                f"{node}/{bus}: held by {state['holder']} (session {state['session']}) since "
                f"{since}Z, {state['lease_left_ms']} ms of {state['lease_ms']} left"
            )
        else:
            line = f"{node}/{bus}: no holder"
        if state.get("failsafe_active"):
            line += ", failsafe active"
        if state.get("reason"):
            line += f" ({state['reason']})"
        lines.append(line)
    return lines or [f"{node}: no bus with a helm"]


def run(args: argparse.Namespace) -> int:
    import sys

    if args.force and not args.reason.strip():
        print('rovbus helm: --force needs --reason "..." (the holder is told it)', file=sys.stderr)
        return EXIT_USAGE

    async def status(client: Client) -> int:
        reply = await client.request(args.node, "helm_status", channel="control")
        print("\n".join(status_lines(args.node, reply.content.get("buses", {}))))
        return EXIT_OK

    return run_client(args, "helm", status if args.status else _hold(args))


def _hold(args: argparse.Namespace) -> Any:
    async def hold(client: Client) -> int:
        import asyncio
        import sys
        import threading

        from rovbus.errors import FrameSyntaxError
        from rovbus.wire.cantext import parse_cansend

        loop = asyncio.get_running_loop()
        lines: asyncio.Queue[str | None] = asyncio.Queue(maxsize=64)

        def read() -> None:  # a thread: stdin may be a terminal or a pipe
            for line in sys.stdin:
                asyncio.run_coroutine_threadsafe(lines.put(line), loop).result()
            asyncio.run_coroutine_threadsafe(lines.put(None), loop).result()

        helm = client.helm(args.node, args.bus, force=args.force, reason=args.reason)
        await helm.take()
        buses = sorted(helm.state)
        bus = args.bus or (buses[0] if len(buses) == 1 else None)
        print(
            f"rovbus helm: holding {', '.join(f'{args.node}/{b}' for b in buses)}", file=sys.stderr
        )
        threading.Thread(target=read, daemon=True, name="rovbus-helm-stdin").start()
        try:
            while (line := await lines.get()) is not None:
                texts = line.split()
                if not texts:
                    await helm.renew()
                    continue
                if bus is None:
                    print("rovbus helm: name the BUS to send frames on", file=sys.stderr)
                    return EXIT_USAGE
                try:
                    frames = [parse_cansend(text, bus) for text in texts]
                except FrameSyntaxError as exc:
                    print(f"rovbus helm: {exc}", file=sys.stderr)
                    continue
                await helm.send(bus, frames)
        finally:
            await helm.release()
        return EXIT_OK

    return hold
