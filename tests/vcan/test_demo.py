"""`rovbus demo --vcan`: the virtual vehicle on socketcan, devices as their own processes."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.vcan
def test_demo_on_vcan_carries_frames_on_every_bus() -> None:
    # a short run folder: the notify sockets' paths must fit in 107 bytes
    with tempfile.TemporaryDirectory(dir="/tmp", prefix="rvb-") as run_dir:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "rovbus",
                "demo",
                "--vcan",
                "--headless",
                "--duration",
                "5",
                "--run-dir",
                run_dir,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout + result.stderr
    for node in ("propulsion", "navigation", "power"):
        assert re.search(rf"node {node}: \w+, up", summary), summary
        assert f"devices {node}: ok" in summary
    counts = [int(n) for n in re.findall(r"(\d+) frames \(ok\)", summary)]
    assert len(counts) == 4
    assert all(n > 0 for n in counts), summary
    assert "result: ok" in summary
