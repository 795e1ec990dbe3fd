"""``rovbus pub TOPIC [JSON]``: publish messages on a PUB socket this command binds."""

from __future__ import annotations

import argparse
from typing import Any

from rovbus.cli.options import EXIT_OK, EXIT_USAGE, parser_defaults, setup_logging

EPILOG = """\
examples:
  rovbus pub --bind tcp://127.0.0.1:5600 demo/status '{"execution_state": "idle"}'
  rovbus pub --bind tcp://*:5600 --type note --rate 10 --count 50 test/note '{"n": 1}'
  rovbus sub --connect tcp://127.0.0.1:5600 demo/         # in another terminal

rovbus is brokerless: subscribers connect to publishers. `pub` binds its own PUB socket
(--bind); point subscribers at it with --connect. Messages are signed with the system
file's key when there is one. Exit status: 0 ok, 2 bad arguments, JSON or system file.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "pub",
        help="publish a message (once, or at a rate) on a PUB socket it binds",
        description="Publish messages with a topic, a type and JSON content.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument("topic", metavar="TOPIC")
    p.add_argument("content", nargs="?", default="{}", metavar="JSON", help="content (an object)")
    p.add_argument("--type", "-t", default="message", dest="msg_type", help="msg_type")
    p.add_argument("--rate", "-r", type=float, metavar="HZ", help="publish at HZ (default: once)")
    p.add_argument(
        "--count",
        "-n",
        type=int,
        metavar="N",
        help="publish N times (default: 1, with --rate: forever)",
    )
    p.add_argument(
        "--bind",
        default="tcp://127.0.0.1:0",
        metavar="ENDPOINT",
        help="where to bind the PUB socket (default: a free loopback port, printed on stderr)",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=0.5,
        metavar="SEC",
        help="wait this long for subscribers to join before the first message (default 0.5)",
    )
    p.add_argument("--config", "-c", metavar="FILE", help="system file, for its key and serializer")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    p.add_argument("-q", "--quiet", action="store_true", help="log only errors")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import logging
    import sys

    import zmq

    from rovbus.errors import ConfigError, TransportError
    from rovbus.transport import Publisher, bind
    from rovbus.wire.codec import Codec

    setup_logging(args, "pub")
    log = logging.getLogger("rovbus.cli")
    try:
        content = json.loads(args.content)
    except json.JSONDecodeError as exc:
        print(f"rovbus pub: JSON content: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not isinstance(content, dict):
        print("rovbus pub: JSON content must be an object", file=sys.stderr)
        return EXIT_USAGE
    if args.rate is not None and args.rate <= 0:
        print("rovbus pub: --rate must be positive", file=sys.stderr)
        return EXIT_USAGE
    count = args.count if args.count is not None else (None if args.rate else 1)
    codec = Codec(username="rovbus-pub")
    if args.config:
        from rovbus.config import load_system
        from rovbus.transport.system_codec import system_codec

        try:
            codec = system_codec(load_system(args.config), "rovbus-pub")
        except ConfigError as exc:
            print(f"rovbus pub: {exc}", file=sys.stderr)
            return EXIT_USAGE
    ctx: zmq.Context[Any] = zmq.Context()
    sock: zmq.Socket[Any] = ctx.socket(zmq.PUB)
    sock.setsockopt(zmq.LINGER, 1000)
    try:
        bind(sock, args.bind, "pub")
    except TransportError as exc:
        sock.close(0)
        ctx.term()
        print(f"rovbus pub: {exc}", file=sys.stderr)
        return EXIT_USAGE
    endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    print(f"rovbus pub: publishing on {endpoint}", file=sys.stderr)
    publisher = Publisher("pub", sock, codec, codec.serializer)

    async def publish() -> None:
        await asyncio.sleep(args.wait)
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while count is None or n < count:
            publisher.publish(args.topic, args.msg_type, content)
            n += 1
            if args.rate and (count is None or n < count):
                await asyncio.sleep(max(0.0, start + n / args.rate - loop.time()))
        log.info("published %d message(s)", n)

    try:
        asyncio.run(publish())
    except KeyboardInterrupt:
        return 130
    finally:
        publisher.close(1000)
        ctx.term()
    return EXIT_OK
