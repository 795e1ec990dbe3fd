"""The daemons (node, forwarder) refuse every broken system file of the corpus as
check-config does: exit 2 and a message naming the key path (or the TOML line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.config.test_bad_files import BAD_FILES, REPO, expectations
from tests.helpers.systemfile import node_toml, system_toml


def _start_all(paths: list[Path], command: str = "node") -> list[subprocess.CompletedProcess[str]]:
    """``rovbus COMMAND --config PATH alpha`` for every path, all at once (2 cores)."""
    env = dict(os.environ, NOTIFY_SOCKET="")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "rovbus", command, "--config", str(path), "alpha"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in paths
    ]
    done = []
    for path, proc in zip(paths, procs, strict=True):
        out, err = proc.communicate(timeout=60)
        done.append(subprocess.CompletedProcess([str(path)], proc.returncode, out, err))
    return done


@pytest.mark.parametrize("command", ["node", "forwarder"])
def test_the_daemons_refuse_every_bad_file_naming_the_problem(command: str) -> None:
    results = _start_all(BAD_FILES, command)
    for path, result in zip(BAD_FILES, results, strict=True):
        assert result.returncode == 2, (path.name, result.returncode, result.stderr)
        assert f"rovbus {command}: {path}: invalid system file" in result.stderr, path.name
        for substring in expectations(path):
            assert substring in result.stderr, (path.name, substring, result.stderr)
        assert "Traceback" not in result.stderr, path.name


@pytest.mark.parametrize("mode", [0o644, 0o640])
def test_the_node_daemon_refuses_a_readable_key_file(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "hmac.key"
    key.write_text("0123456789abcdef\n")
    key.chmod(mode)
    config = tmp_path / "system.toml"
    config.write_text(system_toml(node_toml("alpha"), extra=f'[security]\nkey_file = "{key}"\n'))
    (result,) = _start_all([config])
    assert result.returncode == 2
    assert f"security.key_file: secret key file {key} has mode 0{mode:o}" in result.stderr
    assert f"chmod 600 {key}" in result.stderr
