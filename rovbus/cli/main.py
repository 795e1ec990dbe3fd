"""Entry point of the ``rovbus`` command.

Each command lives in its own module, which exposes ``add_parser(subparsers)`` and
``run(args) -> int``. The table below names them; a module is imported only to build its
parser (cheap: argparse only) and to run it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from rovbus import __version__
from rovbus.exitcodes import EXIT_INTERRUPTED, EXIT_USAGE

#: command name -> module under rovbus.cli that defines it
COMMANDS: dict[str, str] = {
    "check-config": "check_config",
    "node": "node",
    "sub": "sub",
    "pub": "pub",
    "req": "req",
    "ctl": "ctl",
    "send": "send",
    "helm": "helm",
    "stop": "stop",
    "dump": "dump",
    "txlog": "txlog",
    "nodes": "nodes",
    "hz": "hz",
    "bw": "bw",
    "record": "record",
    "play": "play",
    "connection-file": "connection_file",
    "forwarder": "forwarder",
    "keygen": "keygen",
    "demo": "demo",
    "sim": "sim",
}

EPILOG = """\
examples:
  rovbus check-config config/demo.toml
  export ROVBUS_CONFIG=config/demo.toml        # then every command finds the system file
  rovbus nodes                                 # who is alive
  rovbus sub propulsion/hb --once              # one heartbeat
  rovbus dump propulsion/can0 123:7FF          # candump, with its filters
  rovbus send navigation can0 380#01           # cansend
  rovbus helm propulsion can0                  # take the helm, setpoints on stdin
  rovbus stop                                  # every node writes its failsafe frames
  rovbus req propulsion node_info              # a request, the reply as JSON
  rovbus record run1.log && rovbus play run1.log --node propulsion --bus can0
  rovbus hz propulsion/can/                    # rates per topic, like ros2 topic hz
  rovbus COMMAND --help
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rovbus",
        description="A brokerless message bus for ROVs: CAN onto ZeroMQ, Jupyter envelope.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rovbus {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS.values():
        module = importlib.import_module(f"rovbus.cli.{module_name}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    module = importlib.import_module(f"rovbus.cli.{COMMANDS[args.command]}")
    try:
        code: int = module.run(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
