"""``rovbus demo`` as a process: the shipped demo on fresh ports, headless."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from rovbus.sim.supervisor import control_request
from tests.helpers.data import REPO
from tests.helpers.ports import free_ports


def _demo_copy(tmp_path: Path) -> Path:
    """config/demo.toml with every port moved to a free one (other demos may run)."""
    text = (REPO / "config" / "demo.toml").read_text()
    ports = sorted(set(re.findall(r"127\.0\.0\.1:(\d+)", text)))
    fresh = dict(zip(ports, map(str, free_ports(len(ports))), strict=True))
    text = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{fresh[m.group(1)]}", text)
    path = tmp_path / "demo.toml"
    path.write_text(text)
    return path


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path))
    env.pop("NOTIFY_SOCKET", None)
    return env


def _demo(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rovbus",
            "demo",
            "--config",
            str(_demo_copy(tmp_path)),
            "--run-dir",
            str(tmp_path / "run"),
            "--headless",
            *args,
        ],
        env=_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_headless_demo_runs_every_node_with_traffic(tmp_path: Path) -> None:
    proc = _demo(tmp_path, "--duration", "4")
    out, err = proc.communicate(timeout=90)
    assert proc.returncode == 0, out + err
    for node, buses in (
        ("propulsion", ["can0"]),
        ("navigation", ["can0"]),
        ("power", ["bms", "pdu"]),
    ):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"  node {node}:"))
        for bus in buses:
            frames = int(re.search(rf"{bus} (\d+) frames", line).group(1))  # type: ignore[union-attr]
            assert frames > 0, line
    assert out.splitlines()[-1] == "result: ok"
    assert not (tmp_path / "run" / "control.sock").exists()


def _wait_info(run: Path, timeout: float = 60) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return json.loads((run / "demo.json").read_text())  # type: ignore[no-any-return]
        except (OSError, ValueError):
            time.sleep(0.2)
    raise AssertionError("the demo never wrote demo.json")


def _control(tmp_path: Path, request: dict) -> dict:  # type: ignore[type-arg]
    """One request on the running demo's control socket (``rovbus sim`` speaks it too)."""
    return asyncio.run(control_request(tmp_path / "run", request))


def _sim(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rovbus", "sim", *args, "--run-dir", str(tmp_path / "run")],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_kill_and_restart_by_request_but_a_crash_fails_the_run(tmp_path: Path) -> None:
    proc = _demo(tmp_path, "--duration", "60")
    try:
        info = _wait_info(tmp_path / "run")
        old = info["children"]["power"]["pid"]
        killed = _sim(tmp_path, "kill", "power")
        assert killed.returncode == 0, killed.stderr
        restarted = _sim(tmp_path, "restart", "power")
        assert restarted.returncode == 0, restarted.stderr
        assert json.loads(restarted.stdout)["pid"] != old
        bad = _sim(tmp_path, "kill", "nobody")
        assert bad.returncode == 1
        assert "no process 'nobody'" in bad.stderr
        # a crash nobody asked for: the run fails and says which
        os.kill(info["children"]["navigation"]["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not _control(tmp_path, {"op": "status"})["children"]["navigation"]["died"]:
            assert time.monotonic() < deadline, "the demo did not see navigation die"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, out + err
    assert "DIED: node navigation (exit status -9)" in out
    assert "DIED: node power" not in out


def _states(config: Path, tmp_path: Path, *group: str) -> dict[str, str]:
    """``rovbus nodes --json`` as seen from a group: node name -> state."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rovbus",
            "nodes",
            "--json",
            "--wait",
            "1.5",
            "--config",
            str(config),
            *group,
        ],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    # exit status 1 says some node is not alive; the rows say which
    assert result.returncode in (0, 1), result.stderr
    return {row["node"]: row["state"] for row in json.loads(result.stdout)}


def _until(config: Path, tmp_path: Path, alive: set[str], *group: str) -> dict[str, str]:
    """Poll the node table from ``group`` until exactly ``alive`` are alive (30 s at most)."""
    deadline = time.monotonic() + 30
    while True:
        states = _states(config, tmp_path, *group)
        if {n for n, s in states.items() if s == "alive"} == alive:
            return states
        assert time.monotonic() < deadline, f"expected {sorted(alive)} alive, got {states}"


def test_tether_cut_silences_topside_only_and_restore_brings_it_back(tmp_path: Path) -> None:
    proc = _demo(tmp_path, "--duration", "90")
    config = tmp_path / "demo.toml"
    nodes = {"propulsion", "navigation", "power"}
    try:
        _wait_info(tmp_path / "run")
        _until(config, tmp_path, nodes)
        assert _sim(tmp_path, "tether", "cut").returncode == 0
        topside = _until(config, tmp_path, set())
        assert set(topside) == nodes
        # nothing inside the vehicle notices
        _until(config, tmp_path, nodes, "--group", "vehicle")
        assert _sim(tmp_path, "tether", "restore").returncode == 0
        _until(config, tmp_path, nodes)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, out + err
