"""Benchmark a node's per-frame publish path against another version of canframe.py.

What a node does in Python for each CAN frame it publishes, measured with this tree's
``rovbus/wire/canframe.py`` and, in the same run, with another version of that file (the
reference, e.g. the one before a change), loaded beside it:

- ``rx_envelope``: a received ``can.Message`` to a signed ``can_frame`` envelope
  (``CanFrame.from_can_message``, ``to_content``, ``Codec.encode_new``): an unbatched bus;
- ``batch_64``: the content of a ``can_batch`` of 64 received frames: a batched bus;
- ``tx_envelope``: a transmitted frame with its origin to a signed envelope, and the
  same frame without one (this tree only: the reference may have no origins).

    git show 65f9685:rovbus/wire/canframe.py > /tmp/canframe_ref.py
    .venv/bin/python tools/bench_canframe.py /tmp/canframe_ref.py
    .venv/bin/python tools/bench_canframe.py /tmp/canframe_ref.py --json

Contenders run in interleaved rounds, the best round counts (as in bench_codec.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any

import can
from bench_codec import KEY, SCHEME, TOPIC, measure, parse_round_args

from rovbus.wire import canframe
from rovbus.wire.codec import Codec
from rovbus.wire.origin import Origin


def load_reference(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("canframe_reference", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"bench_canframe: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def steps(module: Any) -> dict[str, Callable[[], None]]:
    """The measured steps with ``module``'s ``CanFrame`` and ``batch_content``."""
    codec = Codec(KEY, SCHEME, username="propulsion")
    msg = can.Message(arbitration_id=0x0F3, data=bytes(range(1, 9)), timestamp=1.7e9)
    identities = (TOPIC,)
    frames = [module.CanFrame.from_can_message(msg, "can0", "rx") for _ in range(64)]

    def rx_envelope() -> None:
        frame = module.CanFrame.from_can_message(msg, "can0", "rx")
        codec.encode_new("can_frame", frame.to_content(), identities)

    def batch_64() -> None:
        module.batch_content("can0", frames)

    return {"rx_envelope": rx_envelope, "batch_64": batch_64}


def tx_step(origin: Origin | None) -> Callable[[], None]:
    codec = Codec(KEY, SCHEME, username="propulsion")
    frame = canframe.CanFrame("can0", 0x0F3, bytes(8), timestamp=1.7e9, direction="tx")
    frame = dataclasses.replace(frame, origin=origin)

    def tx_envelope() -> None:
        codec.encode_new("can_frame", frame.to_content(), (TOPIC,))

    return tx_envelope


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", metavar="CANFRAME_PY", help="the other canframe.py")
    args = parse_round_args(parser, argv, rounds=8)
    reference = load_reference(args.reference)
    contenders: dict[str, Callable[[], None]] = {}
    for who, module in (("reference", reference), ("this", canframe)):
        for name, step in steps(module).items():
            step()
            contenders[f"{who}_{name}"] = step
    origin = Origin("operator", "4f1c2a7e-9b3d4c5e6f708192a3b4c5d6_1234_17", 1.7e9, "4f1c2a7e")
    contenders["this_tx_envelope"] = tx_step(origin)
    contenders["this_tx_envelope_no_origin"] = tx_step(None)
    rates = measure(contenders, args.seconds, args.rounds)
    result: dict[str, float] = {name: round(rate) for name, rate in rates.items()}
    for name in ("rx_envelope", "batch_64"):
        result[f"ratio_{name}"] = round(rates[f"this_{name}"] / rates[f"reference_{name}"], 3)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"per second, best of {args.rounds} interleaved rounds ({args.seconds:g} s each in all)")
    for name in ("rx_envelope", "batch_64"):
        before, after = rates[f"reference_{name}"], rates[f"this_{name}"]
        print(
            f"  {name:<12} reference {before:>10,.0f}  this {after:>10,.0f}  {after / before:.3f}x"
        )
    with_origin, without = rates["this_tx_envelope"], rates["this_tx_envelope_no_origin"]
    print(f"  tx_envelope  without origin {without:>10,.0f}  with {with_origin:>10,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
