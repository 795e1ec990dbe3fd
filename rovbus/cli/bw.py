"""``rovbus bw PREFIX ...``: bandwidth per topic, like ``ros2 topic bw``."""

from __future__ import annotations

import argparse
from typing import Any

EPILOG = """\
examples:
  rovbus bw propulsion/                        # every topic of a node, one line each
  rovbus bw nav/can/ propulsion/can/ --period 5
  rovbus bw propulsion/hb --once --json

Bytes are the whole envelope on the wire (every frame: topic, signature, the four maps).
Each topic keeps its last --window arrivals. Exit status: 0 ok, 1 nothing within
--timeout, 2 bad system file.
"""


def add_parser(sub: Any) -> None:
    from rovbus.cli.rates import add_rate_parser

    add_rate_parser(sub, "bw", "print the bandwidth of topics", EPILOG)


def run(args: argparse.Namespace) -> int:
    from rovbus.cli.rates import run_rates

    return run_rates(args, "bw")
