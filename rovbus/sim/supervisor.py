"""The demo supervisor: a system's nodes and forwarders as child processes.

Each child is ``python -m rovbus node|forwarder --config FILE NAME`` (or ``sim devices``
for devices on socketcan), started in its own session (a Ctrl-C in the terminal reaches
the supervisor only, which stops the children in order), with its output in a log file
of the run folder and ``NOTIFY_SOCKET`` pointing at a datagram socket the supervisor
bound for that child alone: a child is up when it sends ``READY=1``, as under systemd.

Stopping sends SIGTERM to every child, waits up to a deadline, then SIGKILLs what is
left. A child that exits while the supervisor did not ask it to has *died*; the demo
reports it and exits non-zero.

Faults that only a supervisor can cause: ``kill`` (SIGKILL a child: a crashed computer),
``restart`` (start it again), and ``tether cut|restore`` (SIGSTOP/SIGCONT the forwarders:
their TCP connections stay up but nothing flows, as on a cut cable). ``rovbus sim kill``
and friends ask a running demo for them through :class:`ControlServer`, a unix socket in
the run folder speaking one JSON line each way; ``demo.json`` there names it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rovbus.config import SystemConfig
from rovbus.errors import RovbusError, SupervisorError

__all__ = [
    "Child",
    "ControlServer",
    "Supervisor",
    "control_request",
    "default_run_dir",
]

Role = Literal["node", "forwarder", "devices"]


def default_run_dir(system: SystemConfig) -> Path:
    """Where a demo of ``system`` keeps its logs, sockets and ``demo.json``."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    return Path(base) / "rovbus" / f"demo-{system.name}"


@dataclass
class Child:
    """One supervised process."""

    key: str  # unique: "propulsion", "tether", "devices:propulsion"
    role: Role
    name: str  # its name in the system file
    argv: list[str]
    log_path: Path
    notify_path: Path
    proc: asyncio.subprocess.Process | None = None
    ready: bool = False
    status: str = ""
    started_at: float = 0.0
    starts: int = 0
    exits: list[int] = field(default_factory=list)
    died: list[int] = field(default_factory=list)  # exit codes of unexpected exits
    expect_exit: bool = False  # the supervisor stopped or killed it
    paused: bool = False
    _notify: socket.socket | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def log_tail(self, lines: int = 8) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return text.splitlines()[-lines:]


class Supervisor:
    """Start, watch, stop (and break) the processes of a system file."""

    def __init__(
        self,
        config_path: Path,
        system: SystemConfig,
        *,
        run_dir: Path,
        forwarders: bool = True,
        devices_as_processes: bool = False,
        python: str = sys.executable,
        ready_timeout: float = 30.0,
        stop_deadline: float = 5.0,
    ) -> None:
        self.config_path = config_path
        self.system = system
        self.run_dir = run_dir
        self.python = python
        self.ready_timeout = ready_timeout
        self.stop_deadline = stop_deadline
        self.children: dict[str, Child] = {}
        self.stopping = False
        self._watchers: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        run_dir.mkdir(parents=True, exist_ok=True)
        for node in system.nodes.values():
            has_devices = any(bus.devices for bus in node.buses)
            argv = ["node", "--config", str(config_path), node.name]
            if devices_as_processes and has_devices:
                argv.append("--no-devices")
            self._add(node.name, "node", node.name, argv)
            if devices_as_processes and has_devices:
                self._add(
                    f"devices:{node.name}",
                    "devices",
                    node.name,
                    ["sim", "devices", "--config", str(config_path), node.name],
                )
        if forwarders:
            for fwd in system.forwarders.values():
                self._add(
                    fwd.name,
                    "forwarder",
                    fwd.name,
                    ["forwarder", "--config", str(config_path), fwd.name],
                )

    def _add(self, key: str, role: Role, name: str, argv: list[str]) -> None:
        safe = key.replace(":", "-")
        self.children[key] = Child(
            key,
            role,
            name,
            [self.python, "-m", "rovbus", *argv],
            self.run_dir / f"{safe}.log",
            self.run_dir / f"notify-{safe}.sock",
        )

    # -- starting ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every child and wait until each is ready; SupervisorError naming the ones
        that exited or stayed silent (everything started is stopped again)."""
        try:
            for child in self.children.values():
                await self._spawn(child)
            await self.wait_ready(self.children.values())
        except BaseException:
            await self.stop()
            raise

    async def wait_ready(self, children: Iterable[Child]) -> None:
        pending = list(children)
        deadline = time.monotonic() + self.ready_timeout
        while pending:
            failed = [c for c in pending if not c.running and not c.ready]
            if failed:
                raise SupervisorError(
                    "; ".join(
                        f"{c.role} {c.name} exited with status {c.exits[-1] if c.exits else '?'}"
                        + (f": {c.log_tail(3)[-1]}" if c.log_tail(3) else "")
                        for c in failed
                    )
                )
            pending = [c for c in pending if not c.ready]
            left = deadline - time.monotonic()
            if not pending:
                return
            if left <= 0:
                names = ", ".join(f"{c.role} {c.name}" for c in pending)
                raise SupervisorError(
                    f"not ready after {self.ready_timeout:g} s: {names} (logs in {self.run_dir})"
                )
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))

    async def _spawn(self, child: Child) -> None:
        child.notify_path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            sock.bind(str(child.notify_path))
        except OSError as exc:
            sock.close()
            raise SupervisorError(
                f"cannot bind the notify socket {child.notify_path}: {exc} "
                "(a shorter --run-dir helps: unix socket paths are limited to 107 bytes)"
            ) from None
        sock.setblocking(False)
        child._notify = sock
        child.ready = False
        child.status = "starting"
        child.expect_exit = False
        env = dict(os.environ, NOTIFY_SOCKET=str(child.notify_path), PYTHONUNBUFFERED="1")
        env.pop("WATCHDOG_USEC", None)
        env.pop("LISTEN_FDS", None)
        with child.log_path.open("ab") as log:
            log.write(f"--- start {time.strftime('%H:%M:%S')}: {' '.join(child.argv)}\n".encode())
            log.flush()
            child.proc = await asyncio.create_subprocess_exec(
                *child.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        child.started_at = time.monotonic()
        child.starts += 1
        task = asyncio.create_task(self._watch(child, child.proc, sock))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _watch(
        self, child: Child, proc: asyncio.subprocess.Process, sock: socket.socket
    ) -> None:
        loop = asyncio.get_running_loop()
        notes = asyncio.create_task(self._read_notify(child, sock, loop))
        try:
            code = await proc.wait()
        finally:
            notes.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await notes
            sock.close()
            child.notify_path.unlink(missing_ok=True)
        child.exits.append(code)
        if not child.expect_exit and not self.stopping:
            child.died.append(code)
            child.status = f"died (status {code})"
        else:
            child.status = "stopped"
        child.ready = False
        self._changed.set()

    async def _read_notify(
        self, child: Child, sock: socket.socket, loop: asyncio.AbstractEventLoop
    ) -> None:
        while True:
            data = await loop.sock_recv(sock, 4096)
            for line in data.decode(errors="replace").splitlines():
                if line == "READY=1":
                    child.ready = True
                    child.status = "ready"
                    self._changed.set()
                elif line == "STOPPING=1":
                    child.status = "stopping"

    # -- faults -----------------------------------------------------------------------------

    def child(self, key: str) -> Child:
        found = self.children.get(key)
        if found is None:
            known = ", ".join(self.children)
            raise ValueError(f"no process {key!r} in this demo; it runs {known}")
        return found

    async def kill(self, key: str) -> Child:
        """SIGKILL a child, as a crash would (reported as killed, not as died)."""
        child = self.child(key)
        if not child.running or child.proc is None:
            raise ValueError(f"{child.role} {child.name} is not running")
        child.expect_exit = True
        child.proc.kill()
        await child.proc.wait()
        await asyncio.sleep(0)  # let the watcher record the exit
        child.status = "killed"
        return child

    async def restart(self, key: str) -> Child:
        """Stop a child if it runs, start it again and wait until it is ready."""
        child = self.child(key)
        if child.running:
            await self._terminate([child])
        await self._spawn(child)
        await self.wait_ready([child])
        return child

    def tether(self, action: str) -> list[str]:
        """``cut``: SIGSTOP every forwarder; ``restore``: SIGCONT them. Their names."""
        if action not in ("cut", "restore"):
            raise ValueError(f"tether action is cut or restore, not {action!r}")
        forwarders = [c for c in self.children.values() if c.role == "forwarder" and c.running]
        if not forwarders:
            raise ValueError("no forwarder is running in this demo")
        for child in forwarders:
            assert child.proc is not None
            child.proc.send_signal(signal.SIGSTOP if action == "cut" else signal.SIGCONT)
            child.paused = action == "cut"
            child.status = "tether cut" if child.paused else "ready"
        return [c.name for c in forwarders]

    # -- stopping ---------------------------------------------------------------------------

    async def stop(self) -> None:
        """SIGTERM every child, SIGKILL what is left after the deadline. Idempotent."""
        self.stopping = True
        await self._terminate([c for c in self.children.values() if c.running])
        if self._watchers:
            await asyncio.wait(set(self._watchers), timeout=2.0)

    async def _terminate(self, children: list[Child]) -> None:
        for child in children:
            child.expect_exit = True
            if child.proc is not None and child.proc.returncode is None:
                if child.paused:
                    child.proc.send_signal(signal.SIGCONT)
                    child.paused = False
                with contextlib.suppress(ProcessLookupError):
                    child.proc.terminate()
        waits = [c.proc.wait() for c in children if c.proc is not None]
        if not waits:
            return
        _, pending = await asyncio.wait(
            [asyncio.ensure_future(w) for w in waits], timeout=self.stop_deadline
        )
        for child in children:
            if child.proc is not None and child.proc.returncode is None:
                child.status = "killed after the stop deadline"
                with contextlib.suppress(ProcessLookupError):
                    child.proc.kill()
        if pending:
            await asyncio.wait(pending, timeout=2.0)

    # -- reporting --------------------------------------------------------------------------

    def died(self) -> list[Child]:
        return [c for c in self.children.values() if c.died]

    def describe(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "config": str(self.config_path),
            "run_dir": str(self.run_dir),
            "children": {
                key: {
                    "role": c.role,
                    "name": c.name,
                    "pid": c.pid,
                    "running": c.running,
                    "ready": c.ready,
                    "status": c.status,
                    "starts": c.starts,
                    "died": c.died,
                    "log": str(c.log_path),
                }
                for key, c in self.children.items()
            },
        }


# -- the control socket --------------------------------------------------------------------


#: a request is one line of at most this many bytes, sent within ``REQUEST_TIMEOUT`` s
LINE_LIMIT = 64 * 1024
REQUEST_TIMEOUT = 5.0


class ControlServer:
    """``run_dir/control.sock``: one JSON request line in, one JSON reply line out.

    Requests: ``{"op": "kill"|"restart", "name": KEY}``, ``{"op": "tether", "action":
    "cut"|"restore"}``, ``{"op": "status"}``. Replies: ``{"status": "ok", ...}`` or
    ``{"status": "error", "error": TEXT}``. Whatever a client sends gets one of them (a
    client silent for ``REQUEST_TIMEOUT`` gets nothing); each connection is counted in
    ``requests``, each error reply or silent client in ``refused`` (both in the status
    reply, under ``control``).
    """

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.path = supervisor.run_dir / "control.sock"
        self.info_path = supervisor.run_dir / "demo.json"
        self._server: asyncio.AbstractServer | None = None
        self.requests = 0
        self.refused = 0

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(
            self._client, path=str(self.path), limit=LINE_LIMIT
        )
        self.write_info()

    def write_info(self) -> None:
        info = {**self.supervisor.describe(), "control": str(self.path)}
        tmp = self.info_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(info, indent=2) + "\n")
        tmp.replace(self.info_path)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None
        self.path.unlink(missing_ok=True)
        self.info_path.unlink(missing_ok=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.requests += 1
        try:
            reply = await self._answer(reader)
            if reply is not None:
                writer.write(json.dumps(reply).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass  # gone before its reply
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> dict[str, Any] | None:
        """The reply to the request line ``reader`` holds; ``None`` for a silent client."""
        try:
            try:
                line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT)
            except ValueError:  # the reader's limit: no newline within LINE_LIMIT bytes
                raise ValueError(
                    f"a request is one JSON line of at most {LINE_LIMIT} bytes"
                ) from None
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("expected a JSON object")
            return await self.handle(request)
        except TimeoutError:
            self.refused += 1
            return None
        except (ValueError, RecursionError, RovbusError) as exc:  # RecursionError: too deep
            self.refused += 1
            return {"status": "error", "error": str(exc)}

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        sup = self.supervisor
        op = request.get("op")
        if op == "status":
            control = {"requests": self.requests, "refused": self.refused}
            return {"status": "ok", **sup.describe(), "control": control}
        if op in ("kill", "restart"):
            name = request.get("name")
            if not isinstance(name, str):
                raise ValueError(f"{op} needs 'name'")
            child = await (sup.kill(name) if op == "kill" else sup.restart(name))
            self.write_info()
            return {"status": "ok", "name": child.key, "pid": child.pid, "state": child.status}
        if op == "tether":
            names = sup.tether(str(request.get("action")))
            return {"status": "ok", "forwarders": names, "action": request.get("action")}
        raise ValueError(f"unknown op {op!r}; expected kill, restart, tether or status")


async def control_request(
    run_dir: Path, request: dict[str, Any], timeout: float = 60.0
) -> dict[str, Any]:
    """Send one request to the demo running in ``run_dir``; its reply. ConnectionError
    (FileNotFoundError) when no demo runs there."""
    path = run_dir / "control.sock"
    reader, writer = await asyncio.open_unix_connection(str(path))
    try:
        writer.write(json.dumps(request).encode() + b"\n")
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
    finally:
        writer.close()
    reply = json.loads(line) if line else {"status": "error", "error": "no reply"}
    return reply if isinstance(reply, dict) else {"status": "error", "error": "bad reply"}
