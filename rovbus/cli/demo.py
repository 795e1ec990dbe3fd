"""``rovbus demo``: the virtual vehicle, every node and forwarder as a process, live."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rovbus.cli.options import parser_defaults
from rovbus.exitcodes import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

if TYPE_CHECKING:
    from rovbus.config import SystemConfig
    from rovbus.sim.supervisor import Supervisor

DEFAULT_DEMO = "config/demo.toml"

EPILOG = """\
examples:
  rovbus demo                                  # config/demo.toml, live view; Ctrl-C stops
  rovbus demo --headless --duration 10         # for scripts: a summary, exit 1 on trouble
  rovbus demo --config config/replay-demo.toml
  rovbus demo --vcan                           # socketcan vcan0/vcan1 (tools/vcan-up.sh)

While it runs, from another terminal (ROVBUS_CONFIG=config/demo.toml):
  rovbus helm propulsion can0                  # then type 201#E803: thruster 1 to 1000 rpm;
                                               # kill it and every thruster goes to 0 rpm
  rovbus stop                                  # every node writes its failsafe frames
  rovbus sim fault navigation can0 drop 0.3    # lose 30 % of received frames
  rovbus sim fault power bms bus-off           # ... and: rovbus sim fault power bms recover
  rovbus sim kill navigation                   # a crashed computer; rovbus sim restart navigation
  rovbus sim tether cut                        # rovbus sim tether restore

Each process logs to a file in the run folder (--run-dir; default
$XDG_RUNTIME_DIR/rovbus/demo-NAME). Exit status: 0 ok, 1 a process died or a bus carried
nothing, 2 the system file is bad or a process did not start, 130 interrupted in
--headless mode without --duration.
"""


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="run the virtual vehicle: every node and forwarder, with a live view",
        description="Start every node and forwarder of the system file as a process, with "
        "simulated devices on their buses, and show the vehicle live.",
        epilog=EPILOG,
        **parser_defaults(),
    )
    p.add_argument(
        "--config",
        "-c",
        metavar="FILE",
        default=None,
        help=f"system file (default: {DEFAULT_DEMO})",
    )
    p.add_argument("--headless", action="store_true", help="no live view; print a summary")
    p.add_argument(
        "--duration", type=float, metavar="SEC", help="stop after SEC seconds (default: Ctrl-C)"
    )
    p.add_argument(
        "--vcan",
        action="store_true",
        help="socketcan vcan0/vcan1 instead of virtual buses (devices as their own processes)",
    )
    p.add_argument("--run-dir", metavar="DIR", help="logs, sockets and demo.json go here")
    p.add_argument(
        "--ready-timeout", type=float, default=30.0, metavar="SEC", help="start-up limit"
    )


def _demo_path(args: argparse.Namespace) -> Path:
    if args.config:
        return Path(args.config)
    here = Path(DEFAULT_DEMO)
    if here.exists():
        return here
    return Path(__file__).resolve().parents[2] / DEFAULT_DEMO


def run(args: argparse.Namespace) -> int:
    from rovbus.config import load_system
    from rovbus.errors import ConfigError

    path = _demo_path(args)
    try:
        system = load_system(path)
    except ConfigError as exc:
        print(f"rovbus demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.duration is not None and args.duration <= 0:
        print("rovbus demo: --duration must be positive", file=sys.stderr)
        return EXIT_USAGE
    from rovbus.cli.main import COMMANDS
    from rovbus.sim.supervisor import default_run_dir

    run_dir = Path(args.run_dir) if args.run_dir else default_run_dir(system)
    skipped: list[str] = []
    forwarders = "forwarder" in COMMANDS
    if not forwarders and system.forwarders:
        note = (
            f"forwarder(s) {', '.join(system.forwarders)}: this rovbus has no "
            "'forwarder' command yet"
        )
        skipped.append(note)
        print(f"rovbus demo: skipping {note}", file=sys.stderr)
    if args.vcan:
        try:
            path, system = _vcan_system(path, system, run_dir)
        except (OSError, ConfigError) as exc:
            print(f"rovbus demo: --vcan: {exc}", file=sys.stderr)
            return EXIT_USAGE
    import asyncio

    from rovbus.daemon.process import event_loop_factory

    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(_main(args, path.absolute(), system, run_dir, forwarders, skipped))


def _vcan_system(path: Path, system: SystemConfig, run_dir: Path) -> tuple[Path, SystemConfig]:
    """The system file with every bus on socketcan: buses called can0 on vcan0 (one shared
    vehicle bus), the others on vcan1. Written to the run folder."""
    import re

    from rovbus.config import load_system

    for iface in ("vcan0", "vcan1"):
        if not Path(f"/sys/class/net/{iface}").exists():
            raise OSError(
                f"no {iface} here: create it with tools/vcan-up.sh (Linux, sudo), or run "
                "inside tools/vcan-vm.sh"
            )
    text = path.read_text()
    text = re.sub(r'interface\s*=\s*"virtual"', 'interface = "socketcan"', text)
    for node in system.nodes.values():
        for bus in node.buses:
            target = "vcan0" if bus.name == "can0" else "vcan1"
            text = text.replace(f'channel = "{bus.channel}"', f'channel = "{target}"')
    run_dir.mkdir(parents=True, exist_ok=True)
    out = run_dir / f"{path.stem}-vcan.toml"
    out.write_text(text)
    return out, load_system(out)


async def _main(
    args: argparse.Namespace,
    path: Path,
    system: SystemConfig,
    run_dir: Path,
    forwarders: bool,
    skipped: list[str],
) -> int:
    import asyncio
    import signal
    import time

    import zmq.asyncio

    from rovbus.errors import SupervisorError
    from rovbus.sim.dbc import demo_database
    from rovbus.sim.supervisor import ControlServer, Supervisor
    from rovbus.sim.view import Monitor, summarize

    sup = Supervisor(
        path,
        system,
        run_dir=run_dir,
        forwarders=forwarders,
        devices_as_processes=args.vcan,
        ready_timeout=args.ready_timeout,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(
        f"rovbus demo: starting {len(sup.children)} process(es) of {system.name} "
        f"(logs in {run_dir})",
        file=sys.stderr,
    )
    try:
        await sup.start()
    except SupervisorError as exc:
        print(f"rovbus demo: {exc}", file=sys.stderr)
        return EXIT_USAGE
    control = ControlServer(sup)
    await control.start()
    ctx = zmq.asyncio.Context()
    monitor = Monitor(system, demo_database())
    watching = asyncio.create_task(monitor.run(ctx))
    started = time.monotonic()
    interrupted = False
    try:
        if args.headless:
            try:
                await asyncio.wait_for(stop.wait(), args.duration)
                interrupted = args.duration is None
            except TimeoutError:
                pass
        else:
            interrupted = not await _live(sup, monitor, stop, started, args.duration)
    finally:
        watching.cancel()
        await asyncio.wait({watching})
        await control.aclose()
        await sup.stop()
        ctx.destroy(linger=0)
    elapsed = time.monotonic() - started
    summary = summarize(
        system,
        monitor.table.rows(time.monotonic()),
        list(sup.children.values()),
        duration=elapsed,
        skipped=skipped,
    )
    print("\n".join(summary.lines))
    if not summary.ok:
        return EXIT_FAILURE
    return EXIT_INTERRUPTED if interrupted and args.headless else EXIT_OK


async def _live(
    sup: Supervisor, monitor: Any, stop: Any, started: float, duration: float | None
) -> bool:
    """Repaint the view until Ctrl-C (False) or the duration is over (True)."""
    import asyncio
    import shutil
    import time

    from rovbus.sim.view import render

    out = sys.stdout
    out.write("\x1b[?25l\x1b[2J")  # hide the cursor, clear the screen
    try:
        while True:
            now = time.monotonic()
            lines = render(
                monitor.table.rows(now),
                monitor.telemetry(),
                list(sup.children.values()),
                elapsed=now - started,
                title=f"{sup.system.name} ({sup.config_path.name})",
            )
            width = shutil.get_terminal_size().columns
            out.write("\x1b[H" + "".join(f"{line[:width]}\x1b[K\n" for line in lines) + "\x1b[J")
            out.flush()
            if duration is not None and now - started >= duration:
                return True
            try:
                await asyncio.wait_for(stop.wait(), 0.5)
                return False
            except TimeoutError:
                pass
    finally:
        out.write("\x1b[?25h")
        out.flush()
