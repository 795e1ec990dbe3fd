"""Benchmark the envelope codec against jupyter_client's Session, in one run.

Each measured loop does what a sender and a receiver do for one CAN frame on pub: build a
message (a fresh header each time), encode it to frames (signed, hmac-sha256), then decode
those frames with a second codec that holds the same key, so the HMAC check and the replay
guard run. Three loops: rovbus with msgpack, rovbus with JSON, and jupyter_client's
``Session`` with its JSON packer (the baseline).

    .venv/bin/python tools/bench_codec.py              # human-readable
    .venv/bin/python tools/bench_codec.py --json       # one JSON object
    .venv/bin/python tools/bench_codec.py --seconds 5  # longer measurements

Each contender runs ``--seconds`` in all, split into ``--rounds`` rounds interleaved with
the others so background load hits all alike; the best round counts.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
import warnings
from collections.abc import Callable
from typing import Any

from rovbus.wire.canframe import CanFrame
from rovbus.wire.codec import Codec
from rovbus.wire.serializers import Serializer

KEY = b"bench-key-0123456789abcdef"
SCHEME = "hmac-sha256"
TOPIC = b"propulsion/can/can0/0F3"


def can_content() -> dict[str, Any]:
    """One classic CAN frame with 8 data bytes, as a node publishes it."""
    frame = CanFrame("can0", 0x0F3, bytes(range(1, 9)), timestamp=1_700_000_000.123456)
    return frame.to_content()


def rovbus_step(serializer: Serializer) -> Callable[[], None]:
    sender = Codec(KEY, SCHEME, username="propulsion", serializer=serializer)
    receiver = Codec(KEY, SCHEME, username="operator")
    guard = receiver.new_replay_guard()  # a receiving channel's
    content = can_content()
    identities = (TOPIC,)

    def step() -> None:
        message = sender.message("can_frame", content, identities=identities)
        receiver.decode(sender.encode(message), guard)

    step()  # make sure it works before timing it
    return step


def session_step() -> Callable[[], None]:
    from jupyter_client.session import Session

    sender = Session(key=KEY, signature_scheme=SCHEME, packer="json", username="propulsion")
    receiver = Session(key=KEY, signature_scheme=SCHEME, packer="json", username="operator")
    content = can_content()

    def step() -> None:
        msg = sender.msg("can_frame", content)
        frames = sender.serialize(msg, ident=TOPIC)
        _, rest = receiver.feed_identities(frames)
        receiver.deserialize(rest)

    step()
    return step


def rate(step: Callable[[], None], seconds: float) -> float:
    """Messages per second of ``step`` over about ``seconds``."""
    batch = 200
    count = 0
    gc.collect()
    start = time.perf_counter()
    deadline = start + seconds
    now = start
    while now < deadline:
        for _ in range(batch):
            step()
        count += batch
        now = time.perf_counter()
    return count / (now - start)


def measure(steps: dict[str, Callable[[], None]], seconds: float, rounds: int) -> dict[str, float]:
    """The best rate of each step over ``rounds`` interleaved rounds, ``seconds`` in all each.

    Interleaving puts every contender under the same background load; the best round is
    the least disturbed one (as ``timeit`` reports the minimum).
    """
    best = dict.fromkeys(steps, 0.0)
    for _ in range(rounds):
        for name, step in steps.items():
            best[name] = max(best[name], rate(step, seconds / rounds))
    return best


def parse_round_args(
    parser: argparse.ArgumentParser, argv: list[str] | None, rounds: int = 4
) -> argparse.Namespace:
    """``parser`` with ``--seconds``, ``--rounds`` and ``--json`` (what ``measure``
    takes), parsed and checked."""
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement (2)")
    parser.add_argument("--rounds", type=int, default=rounds, help=f"interleaved rounds ({rounds})")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1:
        parser.error("--seconds must be positive and --rounds at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_round_args(argparse.ArgumentParser(description=__doc__.splitlines()[0]), argv)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Session warns about things irrelevant here
        steps = {
            "session": session_step(),
            "msgpack": rovbus_step(Serializer.MSGPACK),
            "json": rovbus_step(Serializer.JSON),
        }
        rates = measure(steps, args.seconds, args.rounds)
    session, msgpack_rate, json_rate = rates["session"], rates["msgpack"], rates["json"]
    result = {
        "rovbus_msgpack_per_s": round(msgpack_rate),
        "rovbus_json_per_s": round(json_rate),
        "session_json_per_s": round(session),
        "ratio_msgpack": round(msgpack_rate / session, 2),
        "ratio_json": round(json_rate / session, 2),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"build + encode + decode, signed {SCHEME}, one CAN frame: "
        f"{args.seconds:g} s each in {args.rounds} interleaved rounds, best round"
    )
    rows = [
        ("jupyter_client Session (json)", session, 1.0),
        ("rovbus msgpack", msgpack_rate, result["ratio_msgpack"]),
        ("rovbus json", json_rate, result["ratio_json"]),
    ]
    for label, value, ratio in rows:
        print(f"  {label:<30} {value:>10,.0f} msgs/s  {ratio:5.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
