"""A daemon knows which host it is on, and refuses to start another host's node or forwarder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.daemons import daemon_process
from tests.helpers.systemfile import forwarder_toml, node_toml, system_toml

HOSTS = '[hosts.main]\naddress = "127.0.0.1"\n[hosts.nav]\naddress = "127.0.0.2"\n{hostname}\n'


def write(tmp_path: Path, hostname: str = "") -> Path:
    path = tmp_path / "system.toml"
    path.write_text(
        system_toml(
            node_toml("propulsion", host="main"),
            forwarder_toml("tether", host="main"),
            extra=HOSTS.format(hostname=hostname),
        )
    )
    return path


def rovbus(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rovbus", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=dict(os.environ, **(env or {})),
    )


@pytest.mark.parametrize(
    ("args", "env", "how"),
    [
        (["node", "--host", "nav", "propulsion"], {}, "--host nav"),
        (["forwarder", "tether"], {"ROVBUS_HOST": "nav"}, "--host nav"),
    ],
)
def test_another_hosts_daemon_is_refused(
    tmp_path: Path, args: list[str], env: dict[str, str], how: str
) -> None:
    command, *rest = args
    table, name = ("nodes", "propulsion") if command == "node" else ("forwarders", "tether")
    done = rovbus(command, "--config", str(write(tmp_path)), *rest, env=env)
    assert done.returncode == 2
    assert (
        f"{table}.{name}: runs on host main, and this is host nav ({how}); start it on main, "
        f"or change {table}.{name}.host"
    ) in done.stderr


def test_the_machines_hostname_tells_the_host(tmp_path: Path) -> None:
    """nav's hostname is this machine's: propulsion (on main) does not start here."""
    config = write(tmp_path, hostname=f'hostname = "{socket.gethostname()}"')
    done = rovbus("node", "--config", str(config), "propulsion")
    assert done.returncode == 2
    assert f'this is host nav (hostname "{socket.gethostname()}")' in done.stderr


def test_an_unknown_host_option(tmp_path: Path) -> None:
    done = rovbus("node", "--config", str(write(tmp_path)), "--host", "topside", "propulsion")
    assert done.returncode == 2
    assert "hosts.topside: no such host; known hosts: main, nav" in done.stderr


def test_the_daemon_starts_on_its_own_host(tmp_path: Path) -> None:
    config = write(tmp_path)
    with daemon_process("node", config, "propulsion", tmp_path, args=["--host", "main"]) as (
        proc,
        systemd,
    ):
        systemd.wait_for("READY=1")
        assert proc.poll() is None


def test_a_daemon_that_cannot_tell_its_host_starts_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --host, no $ROVBUS_HOST, and no host has this machine's hostname."""
    config = write(tmp_path)
    monkeypatch.delenv("ROVBUS_HOST", raising=False)
    with daemon_process("forwarder", config, "tether", tmp_path) as (proc, systemd):
        systemd.wait_for("READY=1")
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "forwarders.tether: not checking which host this is" in err
