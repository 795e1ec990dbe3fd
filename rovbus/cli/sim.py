"""``rovbus sim ...``: simulated devices as a process, and fault injection."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import add_connection_args, parser_defaults, run_client
from rovbus.exitcodes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from rovbus.client import Client

EPILOG = """\
examples:
  rovbus sim fault navigation can0 drop 0.1    # lose 10 % of received frames
  rovbus sim fault navigation can0 delay 50    # hold each received frame 50 ms
  rovbus sim fault propulsion can0 corrupt 0.05
  rovbus sim fault power bms bus-off           # the bus fails until: ... recover
  rovbus sim fault power bms clear             # every fault on the bus ends
  rovbus sim device propulsion can0 thrusters stop   # ... start
  rovbus sim status navigation                 # faults, counters, devices
  rovbus sim kill navigation                   # a running `rovbus demo`: SIGKILL the node
  rovbus sim restart navigation
  rovbus sim tether cut                        # ... restore
  rovbus sim devices --config vcan.toml propulsion   # devices as their own process

fault, device and status are requests to the node (a node that runs simulated devices);
kill, restart and tether go to the `rovbus demo` of the same system file, through the
control socket in its run folder. Connection options as for `rovbus req`; a demo without
a forwarder is reached from the vehicle group: -g vehicle.
"""

FAULTS = ("drop", "delay", "corrupt", "bus-off", "recover", "clear")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "sim",
        help="simulated devices and fault injection (drop, delay, bus-off, kill, tether)",
        description="Fault injection on a running demo, and simulated devices as a process.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    actions = p.add_subparsers(dest="sim_command", metavar="ACTION", required=True)

    f = actions.add_parser("fault", help="drop/delay/corrupt frames, bus-off, recover, clear")
    f.add_argument("node")
    f.add_argument("bus")
    f.add_argument("fault", choices=FAULTS)
    f.add_argument("value", nargs="?", type=float, help="P for drop/corrupt, MS for delay")
    add_connection_args(f)

    d = actions.add_parser("device", help="stop or start a simulated device")
    d.add_argument("node")
    d.add_argument("bus")
    d.add_argument("device", help="its kind (thrusters, depth, ...) or index on the bus")
    d.add_argument("action", choices=("stop", "start"))
    add_connection_args(d)

    s = actions.add_parser("status", help="a node's faults and simulated devices, as JSON")
    s.add_argument("node")
    add_connection_args(s)

    for name, text in (("kill", "SIGKILL a process of a running demo"), ("restart", "restart it")):
        k = actions.add_parser(name, help=text)
        k.add_argument("name", help="node or forwarder name (devices:NODE for a devices process)")
        _add_demo_args(k)

    t = actions.add_parser("tether", help="cut or restore the tether (the forwarders)")
    t.add_argument("action", choices=("cut", "restore"))
    _add_demo_args(t)

    v = actions.add_parser("devices", help="run a node's simulated devices as a process")
    v.add_argument("node")
    v.add_argument("--config", "-c", required=True, metavar="FILE", help="the system file")
    v.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])


def _add_demo_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", "-c", metavar="FILE", help="the demo's system file")
    p.add_argument("--run-dir", metavar="DIR", help="the demo's run folder")


def run(args: argparse.Namespace) -> int:
    command: str = args.sim_command
    if command == "devices":
        return _devices(args)
    if command in ("kill", "restart", "tether"):
        return _demo_request(args)
    return _node_request(args)


def _devices(args: argparse.Namespace) -> int:
    from rovbus.config import load_system
    from rovbus.daemon.process import run_daemon, setup_logging
    from rovbus.errors import ConfigError
    from rovbus.sim.simnode import DeviceProcess

    try:
        system = load_system(args.config)
        system.node(args.node)
    except ConfigError as exc:
        print(f"rovbus sim devices: {exc}", file=sys.stderr)
        return EXIT_USAGE
    setup_logging(args.log_level)
    return run_daemon(lambda: DeviceProcess(system, args.node))


def _node_request(args: argparse.Namespace) -> int:

    command: str = args.sim_command
    if command == "fault":
        needs = args.fault in ("drop", "delay", "corrupt")
        if needs and args.value is None:
            print(f"rovbus sim fault: {args.fault} needs a value", file=sys.stderr)
            return EXIT_USAGE
        msg_type = "sim_fault"
        content: dict[str, Any] = {"bus": args.bus, "fault": args.fault, "value": args.value}
    elif command == "device":
        msg_type = "sim_device"
        device: str | int = int(args.device) if args.device.isdigit() else args.device
        content = {"bus": args.bus, "device": device, "action": args.action}
    else:
        msg_type, content = "sim_status", {}

    async def body(client: Client) -> int:
        reply = await client.request(args.node, msg_type, content)
        shown = {k: v for k, v in reply.content.items() if k != "status"}
        print(json.dumps(shown, indent=None if command != "status" else 2, default=str))
        return EXIT_OK

    return run_client(args, f"sim {command}", body)


def _demo_request(args: argparse.Namespace) -> int:
    import asyncio

    from rovbus.sim.supervisor import control_request, default_run_dir

    if args.run_dir:
        run_dir = Path(args.run_dir)
    else:
        from rovbus.cli.options import default_config
        from rovbus.config import load_system
        from rovbus.errors import ConfigError

        config = args.config or default_config()
        if not Path(config).exists() and args.config is None:
            config = str(Path(__file__).resolve().parents[2] / "config" / "demo.toml")
        try:
            run_dir = default_run_dir(load_system(config, check_files=False))
        except ConfigError as exc:
            print(f"rovbus sim {args.sim_command}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    if args.sim_command == "tether":
        request: dict[str, Any] = {"op": "tether", "action": args.action}
    else:
        request = {"op": args.sim_command, "name": args.name}
    try:
        reply = asyncio.run(control_request(run_dir, request))
    except OSError as exc:
        print(
            f"rovbus sim {args.sim_command}: no rovbus demo runs with run folder {run_dir} "
            f"({exc.strerror or exc})",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    if reply.get("status") != "ok":
        print(f"rovbus sim {args.sim_command}: {reply.get('error')}", file=sys.stderr)
        return EXIT_FAILURE
    print(json.dumps({k: v for k, v in reply.items() if k != "status"}))
    return EXIT_OK
