"""The shipped system files load, and ``rovbus check-config`` reports on them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rovbus.config import Endpoint, SystemConfig, load_system
from rovbus.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "config" / "demo.toml"
EXAMPLE = REPO / "config" / "example-vehicle.toml"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rovbus", "check-config", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module")
def demo() -> SystemConfig:
    return load_system(DEMO)


def test_demo_loads_cleanly(demo: SystemConfig) -> None:
    assert demo.name == "demo"
    assert demo.source == DEMO
    assert demo.security is None
    assert demo.hmac_key() == b""
    assert not demo.signing
    assert not demo.curve
    assert list(demo.groups) == ["vehicle", "topside"]
    assert [n.name for n in demo.nodes_in("vehicle")] == ["propulsion", "navigation", "power"]
    assert demo.nodes_in("topside") == []


def test_demo_nodes_and_buses(demo: SystemConfig) -> None:
    propulsion = demo.node("propulsion")
    assert propulsion.name == "propulsion"
    assert propulsion.endpoints.pub == Endpoint("tcp", host="127.0.0.1", port=7100)
    assert propulsion.endpoints.iopub is not None
    can0 = propulsion.bus("can0")
    assert can0.name == "can0"
    assert can0.batch is not None
    assert can0.allows(0x200, extended=False)
    assert can0.allows(0x20F, extended=False)
    assert not can0.allows(0x20F, extended=True)
    assert not can0.allows(0x300, extended=False)
    channels = [bus.channel for node in demo.nodes.values() for bus in node.buses]
    assert len(channels) == len(set(channels)), "virtual channels must not cross-talk"
    assert all(bus.interface == "virtual" for n in demo.nodes.values() for bus in n.buses)
    batched = [bus for n in demo.nodes.values() for bus in n.buses if bus.batch is not None]
    assert len(batched) == 1
    ports = [ep.port for n in demo.nodes.values() for _, ep in n.endpoints.items()]
    ports += [ep.port for f in demo.forwarders.values() for _, ep in f.endpoints.items()]
    assert all(7100 <= p <= 7299 for p in ports)


def test_demo_forwarder_and_heartbeats(demo: SystemConfig) -> None:
    tether = demo.forwarder("tether")
    assert tether.name == "tether"
    assert (tether.inner, tether.outer) == ("vehicle", "topside")
    assert demo.forwarders_into("topside") == [tether]
    assert demo.forwarders_into("vehicle") == []
    assert demo.forwarder_out_of("vehicle") is tether
    assert demo.heartbeat_interval_of("propulsion") == 1.0
    assert demo.heartbeat_interval_of("power") == 2.0


def test_unknown_node_and_forwarder_name_the_known_ones(demo: SystemConfig) -> None:
    with pytest.raises(ConfigError) as caught:
        demo.node("thrusters")
    assert caught.value.problems == [
        "nodes.thrusters: no such node; known nodes: propulsion, navigation, power"
    ]
    assert caught.value.path == str(DEMO)
    with pytest.raises(ConfigError, match="known forwarders: tether"):
        demo.forwarder("umbilical")


def test_example_only_lacks_its_key_files() -> None:
    with pytest.raises(ConfigError) as caught:
        load_system(EXAMPLE)
    problems = caught.value.problems
    assert problems
    for found in problems:
        assert found.startswith("security.")
        assert "/etc/rovbus/keys/" in found
        assert found.endswith("does not exist")
    assert any(p.startswith("security.key_file: ") for p in problems)


def test_example_is_sound_without_key_file_checks() -> None:
    config = load_system(EXAMPLE, check_files=False)
    assert config.signing
    assert config.curve
    canfd = config.node("navigation").bus("canfd0")
    assert canfd.fd
    assert canfd.data_bitrate == 5_000_000
    assert canfd.allows(0x18FF5010, extended=True)
    assert {b.interface for n in config.nodes.values() for b in n.buses} == {"socketcan"}
    hosts = {ep.host for n in config.nodes.values() for _, ep in n.endpoints.items()}
    assert all(h.startswith("192.168.2.") for h in hosts)


def test_cli_demo_prints_a_summary() -> None:
    result = run_cli("config/demo.toml")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "system demo" in out
    assert "group vehicle" in out
    assert "group topside" in out
    assert "node propulsion" in out
    assert "can0 (virtual:demo-propulsion-can0, 1 Mbit/s)" in out
    assert 'tx_allow[0] "0x200-0x20F": 11-bit 0x200-0x20F\n' in out
    assert "tx_allow: nothing (this bus never transmits)" in out  # power's bms
    # no hosts: one computer binds everything and reaches every node directly, on loopback
    assert "host local: the file declares no hosts: one computer" in out
    assert "    nodes.propulsion pub       tcp://127.0.0.1:7100\n" in out
    assert "    forwarders.tether request  tcp://127.0.0.1:7201\n" in out
    assert "  reaches, as a member of vehicle, topside\n" in out
    assert "    node power: shell tcp://127.0.0.1:7121, control tcp://127.0.0.1:7122\n" in out
    assert out.endswith("1 forwarder(s), 1 host(s)\n")
    assert "forwarder tether: vehicle -> topside" in out
    assert "signing: off; CURVE: off" in out
    assert result.stderr == ""


def test_cli_example_reports_missing_keys() -> None:
    result = run_cli(str(EXAMPLE))
    assert result.returncode == 2
    assert result.stdout == ""
    assert "security.key_file: key file /etc/rovbus/keys/hmac.key does not exist" in result.stderr


def test_cli_example_without_key_files_passes() -> None:
    result = run_cli("--no-key-files", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert "signing: on (hmac-sha256); CURVE: on" in result.stdout
    assert "canfd0 (socketcan:can0, 1 Mbit/s, FD data 5 Mbit/s)" in result.stdout
    assert 'tx_allow[0] "ext:0x18FF5000-0x18FF50FF": 29-bit 0x18FF5000-0x18FF50FF' in result.stdout


def test_cli_missing_file() -> None:
    result = run_cli("no/such/system.toml")
    assert result.returncode == 2
    assert "no such file:" in result.stderr
    assert "system.toml" in result.stderr


def test_cli_one_hosts_view() -> None:
    result = run_cli("--no-key-files", "--host", "topside", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"system rov-1 ({EXAMPLE})",
        "host topside: reached from every group at 192.168.2.1",
        "  binds",
        *(
            f"    nodes.winch {channel:<9}tcp://192.168.2.1:{port}"
            for channel, port in (
                ("pub", 7150),
                ("shell", 7151),
                ("control", 7152),
                ("stdin", 7153),
                ("hb", 7154),
            )
        ),
        "  reaches, as a member of topside",
        "    node winch: shell tcp://192.168.2.1:7151, control tcp://192.168.2.1:7152",
        "    node propulsion: via tether (1 hop), request tcp://192.168.2.2:7201",
        "    node navigation: via tether (1 hop), request tcp://192.168.2.2:7201",
        "    pub tcp://192.168.2.1:7150: winch",
        "    pub tcp://192.168.2.2:7200 (forwarder tether): propulsion, navigation",
    ]


def test_cli_wildcards_are_shown_where_they_are_reached(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("tcp://192.168.2.3:", "tcp://*:")
    (tmp_path / "vehicle.toml").write_text(text)
    result = run_cli("--no-key-files", "--host", "nav", str(tmp_path / "vehicle.toml"))
    assert result.returncode == 0, result.stderr
    assert "    nodes.navigation pub      tcp://*:7110, reached at tcp://192.168.2.3:7110\n" in (
        result.stdout
    )


def test_cli_unknown_host() -> None:
    result = run_cli("--no-key-files", "--host", "laptop", str(EXAMPLE))
    assert result.returncode == 2
    assert (
        result.stderr == f"{EXAMPLE}: hosts.laptop: no such host; known hosts: topside, main, nav\n"
    )
