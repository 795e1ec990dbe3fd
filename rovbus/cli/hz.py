"""``rovbus hz PREFIX ...``: message rate per topic, like ``ros2 topic hz``."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """\
examples:
  rovbus hz propulsion/hb                      # heartbeat rate
  rovbus hz propulsion/can/can0/ nav/can/      # every CAN ID of two nodes, one line each
  rovbus hz nav/can/can1/09F112 --once --window 50

Each topic keeps its last --window arrivals; a report every --period seconds prints the
rate and the min, max and standard deviation of the gaps. A batched bus's topic counts
batches; its line adds the CAN frames a second they carry (JSON: "frames_per_s").
"missed N" says how many messages of the topic were lost on the way since the start
(gaps in the publisher's sequence numbers; JSON: "missed").
Exit status: 0 ok, 1 nothing within --timeout, 2 bad system file.
"""


def add_parser(sub: Any) -> None:
    from rovbus.cli.rates import add_rate_parser

    add_rate_parser(sub, "hz", "print the message rate of topics", EPILOG)


def run(args: argparse.Namespace) -> int:
    from rovbus.cli.rates import run_rates

    return run_rates(args, "hz")
