"""``rovbus pub TOPIC [JSON]``: publish messages on a PUB socket this command binds."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import bound_pub, json_object, parser_defaults, setup_logging
from rovbus.exitcodes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from rovbus.wire.codec import Codec
    from rovbus.wire.serializers import Serializer

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


def _signing(config: str | None) -> tuple[Codec, Serializer] | None:
    """The codec and serializer of the system file ``config`` (unsigned msgpack without
    one); ``None`` when the file is bad, the reason printed."""
    import sys

    from rovbus.errors import ConfigError
    from rovbus.wire.codec import Codec
    from rovbus.wire.serializers import Serializer

    if not config:
        return Codec(username="rovbus-pub"), Serializer.MSGPACK
    from rovbus.config import load_system
    from rovbus.transport.system_codec import system_codec

    try:
        codec = system_codec(load_system(config), "rovbus-pub")
    except ConfigError as exc:
        print(f"rovbus pub: {exc}", file=sys.stderr)
        return None
    return codec, codec.serializer


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import sys

    import zmq

    from rovbus.transport import Publisher

    setup_logging(args, "pub")
    log = logging.getLogger("rovbus.cli")
    content = json_object(args.content, "pub")
    if content is None:
        return EXIT_USAGE
    if args.rate is not None and args.rate <= 0:
        print("rovbus pub: --rate must be positive", file=sys.stderr)
        return EXIT_USAGE
    count = args.count if args.count is not None else (None if args.rate else 1)
    signing = _signing(args.config)
    if signing is None:
        return EXIT_USAGE
    bound = bound_pub(args.bind, "pub")
    if bound is None:
        return EXIT_USAGE
    ctx, sock = bound
    endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
    print(f"rovbus pub: publishing on {endpoint}", file=sys.stderr)
    publisher = Publisher("pub", sock, *signing)

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
        return EXIT_INTERRUPTED
    finally:
        publisher.close(1000)
        ctx.term()
    return EXIT_OK
