"""Benchmark the system-file checks on large systems: do they grow linearly with nodes?

`rovbus check-config`, and every node and forwarder at start, parse the system file and run
the whole-file checks over every node. This generates sound systems of ``--nodes`` sizes
(default 1,000 and 10,000 nodes, each on its own host with six tcp endpoints and one bus,
plus a forwarder) and times, per size:

- ``endpoints``: :func:`rovbus.config.checks.check_endpoints` alone (no endpoint used twice);
- ``checks``: every whole-file check (:func:`rovbus.config.checks.run_checks`, no key files);
- ``models``: TOML and the pydantic models, without the checks: the reference, linear work
  done on the same systems in the same run;
- ``load``: all of it as ``check-config`` runs it (:func:`rovbus.config.load.parse_system`),
  with the garbage collector on.

For each it prints the time per node at each size and the ratio of the largest size's
per-node time to the smallest's: about 1 means linear (as for the reference); a quadratic
check grows with the size factor (10 for 1,000 to 10,000).

    .venv/bin/python tools/bench_config.py                  # 1,000 and 10,000 nodes
    .venv/bin/python tools/bench_config.py --nodes 500 2000 --json

Each measurement is the best of ``--rounds`` runs. The first three run with the garbage
collector off, as ``timeit`` does: its passes over the whole heap (the large parsed system
with it) land in some runs and not others, and would blur the check's own growth;
``load`` keeps it on, for the time a user waits.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rovbus.config import SystemConfig
from rovbus.config.checks import check_endpoints, run_checks
from rovbus.config.load import parse_system

CHANNELS = ("pub", "shell", "control", "stdin", "hb", "iopub")


def system_text(nodes: int) -> str:
    """A sound system file: ``nodes`` nodes on hosts 10.A.B.1, and a tether forwarder."""
    lines = [
        '[system]\nname = "bench"\n',
        "[groups.vehicle]\n[groups.topside]\n",
        '[forwarders.tether]\ninner = "vehicle"\nouter = "topside"',
        "[forwarders.tether.endpoints]",
        'pub = "tcp://10.255.0.1:7200"',
        'request = "tcp://10.255.0.1:7201"',
        'control = "tcp://10.255.0.1:7202"\n',
    ]
    for i in range(nodes):
        name, host = f"n{i:05d}", f"10.{i // 250}.{i % 250}.1"
        lines += [f'[nodes.{name}]\ngroup = "vehicle"', f"[nodes.{name}.endpoints]"]
        lines += [f'{ch} = "tcp://{host}:{7100 + k}"' for k, ch in enumerate(CHANNELS)]
        lines += [
            f"[[nodes.{name}.buses]]",
            'name = "can0"\ninterface = "virtual"',
            f'channel = "{name}-can0"\ntx_allow = ["0x100-0x1FF"]\n',
        ]
    return "\n".join(lines)


def best_of(rounds: int, run: Callable[[], object], *, collector: bool = False) -> float:
    """The shortest of ``rounds`` runs, each after a full collection."""
    times = []
    for _ in range(rounds):
        gc.collect()
        if not collector:
            gc.disable()
        try:
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        finally:
            gc.enable()
    return min(times)


def measure(nodes: int, rounds: int) -> dict[str, float]:
    text = system_text(nodes)
    config = parse_system(text, check_files=False)  # sound: raises otherwise
    context = {"base_dir": Path.cwd()}
    return {
        "endpoints": best_of(rounds, lambda: list(check_endpoints(config))),
        "checks": best_of(rounds, lambda: run_checks(config, check_files=False)),
        "models": best_of(
            rounds,
            lambda: SystemConfig.model_validate(tomllib.loads(text), context=context),
        ),
        "load": best_of(rounds, lambda: parse_system(text, check_files=False), collector=True),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[1000, 10_000], metavar="N")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args(argv)
    sizes = sorted(args.nodes)
    results = {n: measure(n, args.rounds) for n in sizes}
    small, large = sizes[0], sizes[-1]
    report: dict[str, Any] = {"nodes": sizes, "rounds": args.rounds, "work": {}}
    for work in ("endpoints", "checks", "models", "load"):
        per_node = {n: results[n][work] / n for n in sizes}
        report["work"][work] = {
            "seconds": {n: results[n][work] for n in sizes},
            "per_node_us": {n: per_node[n] * 1e6 for n in sizes},
            "ratio": per_node[large] / per_node[small],
        }
    if args.json:
        json.dump(report, sys.stdout)
        print()
        return 0
    head = "".join(f"{f'{n:,} nodes':>22}" for n in sizes)
    print(f"{'work':<28}{head}{f'per-node ratio {large:,}/{small:,}':>32}")
    names = {
        "endpoints": "check_endpoints",
        "checks": "all whole-file checks",
        "models": "TOML + models (reference)",
        "load": "check-config (collector on)",
    }
    for work, row in report["work"].items():
        cells = "".join(
            f"{row['seconds'][n]:>10.3f} s {row['per_node_us'][n]:>6.1f} µs" for n in sizes
        )
        print(f"{names[work]:<28}{cells}{row['ratio']:>32.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
