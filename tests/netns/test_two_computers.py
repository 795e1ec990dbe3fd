"""An operator on one computer reaches a node on another by the address of its host.

Host ``rov`` (namespace, 10.231.0.1) runs node ``alpha`` bound to ``*`` and the forwarder
``tether`` bound to its veth by name; host ``console`` (10.231.0.2) runs only the operator's
commands. Nothing of ``rov`` is on the console's loopback, and the file names no address
but the hosts': each command can reach the node only at 10.231.0.1, over the veth.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.daemons import running
from tests.helpers.systemfile import forwarder_toml, node_toml, system_toml
from tests.netns.namespaces import CONSOLE_ADDRESS, ROV_ADDRESS, Namespaces


@pytest.fixture
def vehicle(namespaces: Namespaces, tmp_path: Path) -> Iterator[Path]:
    hosts = (
        f'[hosts.rov]\naddress = "{ROV_ADDRESS}"\n[hosts.console]\n'
        f'addresses = {{ vehicle = "{CONSOLE_ADDRESS}", topside = "{CONSOLE_ADDRESS}" }}\n'
    )
    path = tmp_path / "system.toml"
    path.write_text(
        system_toml(
            node_toml("alpha", host="rov", bind="*"),
            forwarder_toml("tether", host="rov", bind=namespaces.rov_link),
            interval=0.2,
            extra=hosts,
        )
    )
    with running(path, tmp_path, ["alpha"], ["tether"], prefix=namespaces.exec(namespaces.rov)):
        yield path


def on_console(
    namespaces: Namespaces, config: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``rovbus ARGS`` as the operator on host console."""
    return subprocess.run(
        [
            *namespaces.exec(namespaces.console),
            sys.executable,
            "-m",
            "rovbus",
            *args,
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("group", ["vehicle", "topside"])
def test_the_operator_reaches_the_node_by_its_hosts_address(
    namespaces: Namespaces, vehicle: Path, group: str
) -> None:
    """In the node's group straight to its sockets, in topside through the forwarder."""
    reply = on_console(namespaces, vehicle, "req", "--group", group, "alpha", "node_info")
    assert reply.returncode == 0, reply.stderr
    assert json.loads(reply.stdout)["node"] == "alpha"
    heard = on_console(
        namespaces,
        vehicle,
        "sub",
        "--group",
        group,
        "alpha/hb",
        "--once",
        "--timeout",
        "10",
        "--format",
        "jsonl",
    )
    assert heard.returncode == 0, heard.stderr
    assert json.loads(heard.stdout)["topic"] == "alpha/hb"


def test_a_program_on_the_console_host(namespaces: Namespaces, vehicle: Path) -> None:
    """``--host console``: a member of both groups, so straight to the node; check-config
    shows that view with the rov's address, and never a bind string."""
    reply = on_console(namespaces, vehicle, "req", "--host", "console", "alpha", "node_info")
    assert reply.returncode == 0, reply.stderr
    assert json.loads(reply.stdout)["node"] == "alpha"
    shown = subprocess.run(
        [sys.executable, "-m", "rovbus", "check-config", "--host", "console", str(vehicle)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "reaches, as a member of vehicle, topside" in shown.stdout
    assert f"    pub tcp://{ROV_ADDRESS}:" in shown.stdout
    assert "tcp://*" not in shown.stdout
