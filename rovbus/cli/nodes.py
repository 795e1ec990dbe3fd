"""``rovbus nodes``: the node table from heartbeats."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import add_connection_args, parser_defaults
from rovbus.exitcodes import EXIT_FAILURE, EXIT_OK

if TYPE_CHECKING:
    from rovbus.client import Client, NodeRow

EPILOG = """\
examples:
  rovbus nodes                          # one table, after two heartbeats of every node
  rovbus nodes --watch                  # refresh in place every second (Ctrl-C to stop)
  rovbus nodes --json | jq '.[] | select(.state != "alive") | .node'

state: alive, late (1.5 intervals without a heartbeat), dead (dead_after intervals),
restarted (a new session within dead_after intervals), unheard (never heard from).
rx/s and tx/s are frames per second over all buses, from successive heartbeats.
buses: "!tx" transmit off; "[helm NAME]" NAME holds the bus's helm, "[helm failsafe]" no
one does and the failsafe frames were written, "[helm free]" no one does (rovbus helm).
subs: subscriptions in force at its publishers; "!N": N times a subscriber went over
the caps and was refused for a while (see `rovbus req NODE stats`, "subscriptions").
Exit status: 0 every reachable node is alive (or restarted), 1 otherwise, 2 bad system file.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "nodes",
        help="table of nodes: state, last heartbeat, uptime, buses, frame rates",
        description="Listen to the heartbeats and print a table of every node.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("--watch", "-w", action="store_true", help="refresh the table in place")
    p.add_argument("--interval", type=float, default=1.0, metavar="SEC", help="--watch period")
    p.add_argument("--wait", type=float, metavar="SEC", help="how long to listen first")
    p.add_argument("--json", action="store_true", help="print the rows as a JSON array")
    add_connection_args(p)


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s >= 86400:
        return f"{s // 86400}d{s % 86400 // 3600:02d}h"
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{seconds:.1f}s"


def table(rows: list[NodeRow]) -> str:
    head = ("NODE", "GROUP", "STATE", "LAST HB", "UPTIME", "BUSES", "RX/S", "TX/S", "SUBS")
    lines = [head]
    for r in rows:
        buses = ",".join(
            b.name
            + ("" if b.state == "ok" else f"({b.state})")
            + ("" if b.tx_enabled else "!tx")
            + ("" if b.helm is None else f"[helm {b.helm}]")
            for b in r.buses
        )
        lines.append(
            (
                r.node,
                r.group,
                r.state,
                _num(r.age, ".1f") + ("s" if r.age is not None else ""),
                _uptime(r.uptime),
                buses or "-",
                _num(r.rx_rate, ".1f"),
                _num(r.tx_rate, ".1f"),
                _num(r.subscriptions, "d") + (f" !{r.over_cap}" if r.over_cap else ""),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    right = {3, 4, 6, 7, 8}
    return "\n".join(
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ).rstrip()
        for line in lines
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from rovbus.cli.options import run_client
    from rovbus.cli.output import to_json

    async def body(client: Client) -> int:
        rows = await client.node_table(args.wait)
        if not args.watch:
            if args.json:
                print(to_json([r.as_dict() for r in rows], indent=2))
            else:
                print(table(rows))
            ok = bool(rows) and all(r.state in ("alive", "restarted") for r in rows)
            return EXIT_OK if ok else EXIT_FAILURE
        tty = sys.stdout.isatty()
        while True:
            text = to_json([r.as_dict() for r in rows]) if args.json else table(rows)
            if tty:
                sys.stdout.write("\x1b[H\x1b[J" + text + "\n")
            else:
                sys.stdout.write(text + "\n\n")
            sys.stdout.flush()
            await asyncio.sleep(args.interval)
            rows = await client.node_table(0)

    return run_client(args, "nodes", body)
