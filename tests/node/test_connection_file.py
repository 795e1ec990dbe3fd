"""Connection files: what we write, jupyter_client reads back unchanged."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.connect import find_connection_file

from rovbus.config import parse_system
from rovbus.config.endpoints import parse_endpoint
from rovbus.config.reach import node_endpoints
from rovbus.node.connection_file import (
    connection_info,
    connection_info_for,
    default_connection_path,
    endpoint_port,
    write_connection_file,
)

KEY = b"0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
PORTS = {"shell": 5601, "iopub": 5606, "stdin": 5604, "control": 5603, "hb": 5605}


def tcp_endpoints(host: str = "127.0.0.1") -> dict[str, str]:
    return {ch: f"tcp://{host}:{port}" for ch, port in PORTS.items()} | {
        "pub": f"tcp://{host}:5600"
    }


def sample_info(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "ip": "127.0.0.1",
        "transport": "tcp",
        "shell_port": 5601,
        "iopub_port": 5606,
        "stdin_port": 5604,
        "control_port": 5603,
        "hb_port": 5605,
        "key": KEY,
        "signature_scheme": "hmac-sha256",
    } | overrides
    return connection_info(**values)


def load(path: Path) -> BlockingKernelClient:
    client = BlockingKernelClient()
    client.load_connection_file(str(path))
    return client


def test_connection_info_has_exactly_jupyters_keys() -> None:
    info = sample_info()
    assert info == {
        "transport": "tcp",
        "ip": "127.0.0.1",
        "shell_port": 5601,
        "iopub_port": 5606,
        "stdin_port": 5604,
        "control_port": 5603,
        "hb_port": 5605,
        "key": KEY.decode(),
        "signature_scheme": "hmac-sha256",
        "kernel_name": "rovbus",
    }


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"transport": "inproc"}, "tcp and ipc"),
        ({"ip": ""}, "ip is empty"),
        ({"hb_port": 0}, "hb_port"),
        ({"shell_port": 70000}, "shell_port"),
        ({"iopub_port": "5606"}, "iopub_port"),
        ({"key": b"\xff\xfe"}, "UTF-8"),
    ],
)
def test_connection_info_rejects_bad_arguments(overrides: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sample_info(**overrides)


def test_jupyter_client_loads_what_we_write(tmp_path: Path) -> None:
    path = write_connection_file(tmp_path / "propulsion.json", sample_info())
    assert find_connection_file("propulsion.json", path=[str(tmp_path)]) == str(path)
    assert find_connection_file("propulsion", path=[str(tmp_path)]) == str(path)
    client = load(path)
    assert client.session.key == KEY
    assert client.session.signature_scheme == "hmac-sha256"
    assert client.transport == "tcp"
    assert client.ip == "127.0.0.1"
    assert (client.shell_port, client.iopub_port, client.stdin_port) == (5601, 5606, 5604)
    assert (client.control_port, client.hb_port) == (5603, 5605)
    assert json.loads(path.read_text())["kernel_name"] == "rovbus"


def test_empty_key_means_unsigned(tmp_path: Path) -> None:
    path = write_connection_file(tmp_path / "n.json", sample_info(key=b""))
    client = load(path)
    assert client.session.key == b""
    assert client.session.auth is None


def test_jupyter_client_urls_are_the_node_endpoints(tmp_path: Path) -> None:
    endpoints = tcp_endpoints()
    info = connection_info_for(endpoints, key=KEY, signature_scheme="hmac-sha256")
    client = load(write_connection_file(tmp_path / "n.json", info))
    for channel in PORTS:
        assert client._make_url(channel) == endpoints[channel]


def test_ipc_endpoints_follow_jupyters_dash_n_convention(tmp_path: Path) -> None:
    prefix = tmp_path / "propulsion"
    endpoints = {ch: f"ipc://{prefix}-{n}" for n, ch in enumerate(PORTS, start=1)}
    info = connection_info_for(endpoints, key=KEY, signature_scheme="hmac-sha256")
    assert info["transport"] == "ipc"
    assert info["ip"] == str(prefix)
    client = load(write_connection_file(tmp_path / "n.json", info))
    for channel in PORTS:
        assert client._make_url(channel) == endpoints[channel]


def test_file_mode_is_0600_and_new_folder_0700(tmp_path: Path) -> None:
    path = tmp_path / "run" / "rovbus" / "propulsion.json"
    old_umask = os.umask(0)  # even a permissive umask must not widen the modes
    try:
        write_connection_file(path, sample_info())
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700


def test_existing_file_is_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "propulsion.json"
    path.write_text("stale, and readable by all")
    path.chmod(0o644)
    before = path.stat().st_ino
    write_connection_file(path, sample_info(shell_port=6001))
    after = path.stat()
    assert after.st_ino != before, "written in place instead of renamed over"
    assert stat.S_IMODE(after.st_mode) == 0o600
    assert load(path).shell_port == 6001
    assert sorted(p.name for p in tmp_path.iterdir()) == ["propulsion.json"]


def test_leftover_temp_file_does_not_block_a_write(tmp_path: Path) -> None:
    leftover = tmp_path / f".n.json.{os.getpid()}.tmp"
    leftover.write_text("from a crashed writer")
    write_connection_file(tmp_path / "n.json", sample_info())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.json"]


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    path = tmp_path / "n.json"
    write_connection_file(path, sample_info())
    with pytest.raises(TypeError):
        write_connection_file(path, {"key": object()})
    assert load(path).shell_port == 5601
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.json"]


def test_world_writable_folder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(PermissionError, match="writable by everyone") as raised:
        write_connection_file(folder / "n.json", sample_info())
    assert raised.value.filename == str(folder)
    assert "writable by everyone" in str(raised.value.strerror)
    folder.chmod(0o1777)  # sticky, like /tmp: others cannot replace our file
    write_connection_file(folder / "n.json", sample_info())


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("tcp://127.0.0.1:5555", ("tcp", "127.0.0.1", 5555)),
        ("tcp://rov-main.local:6000", ("tcp", "rov-main.local", 6000)),
        ("tcp://[::1]:5555", ("tcp", "[::1]", 5555)),
        ("ipc:///run/rovbus/propulsion-3", ("ipc", "/run/rovbus/propulsion", 3)),
        ("ipc:///run/rov-bus/a-b-12", ("ipc", "/run/rov-bus/a-b", 12)),
    ],
)
def test_endpoint_port(endpoint: str, expected: tuple[str, str, int]) -> None:
    assert endpoint_port(endpoint) == expected
    assert endpoint_port(parse_endpoint(endpoint)) == expected


@pytest.mark.parametrize(
    ("endpoint", "match"),
    [
        ("ipc:///run/rovbus/propulsion.shell", "ending in -N"),
        ("ipc:///run/rovbus/propulsion-0", "ending in -N"),
        ("ipc:///run/rovbus/propulsion-70000", "ending in -N"),
        ("inproc://node", "cannot reach a inproc"),
        ("udp://1.2.3.4:5", "unknown transport"),
        ("tcp://127.0.0.1", "not tcp://HOST:PORT"),
        ("tcp://*:5555", "binds every interface"),
        ("tcp://0.0.0.0:5555", "binds every interface"),
    ],
)
def test_endpoint_port_rejects(endpoint: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        endpoint_port(endpoint)


def test_connection_info_for_ignores_pub_and_takes_iopub() -> None:
    info = connection_info_for(tcp_endpoints(), key=KEY, signature_scheme="hmac-sha512")
    assert info["iopub_port"] == PORTS["iopub"]
    assert info["signature_scheme"] == "hmac-sha512"
    assert 5600 not in [v for k, v in info.items() if k.endswith("_port")]


def test_connection_info_for_needs_one_host() -> None:
    endpoints = tcp_endpoints()
    endpoints["hb"] = "tcp://10.0.0.2:5605"
    with pytest.raises(ValueError, match="one transport and host") as info:
        connection_info_for(endpoints, key=KEY, signature_scheme="hmac-sha256")
    assert "hb=tcp://10.0.0.2:5605" in str(info.value)


WILDCARD_NODE = """
[system]
name = "t"
[groups.vehicle]
{hosts}
[nodes.n]
group = "vehicle"
{host}
[nodes.n.endpoints]
pub = "tcp://*:5600"
shell = "tcp://*:5601"
control = "tcp://0.0.0.0:5603"
stdin = "tcp://{stdin}:5604"
hb = "tcp://*:5605"
iopub = "tcp://*:5606"
"""


@pytest.mark.parametrize(
    ("hosts", "host", "stdin", "ip"),
    [
        ("", "", "127.0.0.1", "127.0.0.1"),  # no hosts: one computer, reached on loopback
        ('[hosts.main]\naddress = "10.0.0.2"', 'host = "main"', "eth0", "10.0.0.2"),
        ('[hosts.main]\naddress = "10.0.0.2"', 'host = "main"', "10.0.0.2", "10.0.0.2"),
    ],
)
def test_connection_file_of_wildcard_binds_names_the_host(
    hosts: str, host: str, stdin: str, ip: str
) -> None:
    """The file of a node bound to wildcards (and an interface or an address) gives the
    address its host is reached at, the one every other peer connects to too."""
    system = parse_system(WILDCARD_NODE.format(hosts=hosts, host=host, stdin=stdin))
    info = connection_info_for(node_endpoints(system, "n"), key=b"", signature_scheme="hmac-sha256")
    assert info["ip"] == ip
    assert (info["shell_port"], info["control_port"], info["iopub_port"]) == (5601, 5603, 5606)


def test_connection_info_for_names_missing_channels() -> None:
    endpoints: dict[str, str | None] = dict(tcp_endpoints())
    endpoints["iopub"] = None  # a node without the optional JSON IOPub
    with pytest.raises(ValueError, match="missing: iopub"):
        connection_info_for(endpoints, key=KEY, signature_scheme="hmac-sha256")  # type: ignore[arg-type]


def test_default_path_prefers_systemd_runtime_directory() -> None:
    env = {"RUNTIME_DIRECTORY": "/run/rovbus:/run/other", "XDG_RUNTIME_DIR": "/run/user/1000"}
    assert default_connection_path("propulsion", env) == Path("/run/rovbus/propulsion.json")


def test_default_path_xdg_runtime_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert default_connection_path("lights") == tmp_path / "rovbus" / "lights.json"


def test_default_path_falls_back_to_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNTIME_DIRECTORY", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    expected = Path(f"/tmp/rovbus-{os.getuid()}/lights.json")
    assert default_connection_path("lights") == expected


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "x\0y"])
def test_default_path_rejects_names_that_are_not_file_names(name: str) -> None:
    with pytest.raises(ValueError, match="cannot name a connection file"):
        default_connection_path(name, {})
