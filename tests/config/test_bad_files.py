"""The corpus of broken system files: each names its problem, with the key path.

Every ``tests/configs/bad/*.toml`` starts with one or more ``# expect: SUBSTRING`` lines;
each substring must appear in the error, and the file must have exactly one problem (so
each file tests one thing). File modes are not kept by git, so the world-readable key
lives here, built in ``tmp_path``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rovbus.config import load_system, parse_system
from rovbus.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "tests" / "configs" / "bad"
BAD_FILES = sorted(BAD.glob("*.toml"))


def expectations(path: Path) -> list[str]:
    found = []
    for line in path.read_text().splitlines():
        if not line.startswith("# expect:"):
            break
        found.append(line.removeprefix("# expect:").strip())
    return found


def test_corpus_is_there() -> None:
    assert len(BAD_FILES) >= 12


@pytest.mark.parametrize("path", BAD_FILES, ids=[p.stem for p in BAD_FILES])
def test_bad_file_names_its_problem(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no '# expect:' first line"
    with pytest.raises(ConfigError) as caught:
        load_system(path)
    error = caught.value
    assert error.path == str(path)
    assert len(error.problems) == 1, error.problems
    for substring in expected:
        assert substring in str(error)


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("wrong_type", "nodes.thrusters.buses[0].bitrate"),
        ("shared_endpoint", "nodes.navigation.endpoints.pub"),
        ("forwarder_cycle", "forwarders.tether"),
    ],
)
def test_cli_names_the_key(name: str, key: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rovbus", "check-config", str(BAD / f"{name}.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"{name}.toml: 1 problem(s)" in result.stderr
    assert f"  {key}: " in result.stderr
    assert expectations(BAD / f"{name}.toml")[0] in result.stderr


SECURE = """\
[system]
name = "keyed"
[security]
key_file = "keys/hmac.key"
"""


def test_world_readable_key_file(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    keys.mkdir()
    key = keys / "hmac.key"
    key.write_bytes(b"  0123456789abcdef\n")
    key.chmod(0o644)
    system = tmp_path / "system.toml"
    system.write_text(SECURE)
    with pytest.raises(ConfigError) as caught:
        load_system(system)
    assert caught.value.problems == [
        f"security.key_file: secret key file {key} has mode 0644, readable by group or "
        f"others; fix it with: chmod 600 {key}"
    ]
    key.chmod(0o600)
    config = load_system(system)
    assert config.security is not None
    assert config.security.key_file == key  # relative to the system file's folder
    assert config.hmac_key() == b"0123456789abcdef"
    assert config.security.digest_name == "sha256"


def test_group_readable_secret_is_also_refused(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    key = tmp_path / "keys" / "hmac.key"
    key.write_text("secret")
    key.chmod(0o640)
    with pytest.raises(ConfigError, match=r"has mode 0640.*chmod 600"):
        parse_system(SECURE, base_dir=tmp_path)


def test_empty_key_file(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    key = tmp_path / "keys" / "hmac.key"
    key.write_text("\n")
    key.chmod(0o600)
    with pytest.raises(ConfigError, match=r"security.key_file: key file .* is empty"):
        parse_system(SECURE, base_dir=tmp_path)
    config = parse_system(SECURE, base_dir=tmp_path, check_files=False)
    assert config.security is not None
    with pytest.raises(ConfigError, match="is empty"):
        config.hmac_key()


def test_curve_key_files_checked(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    for name in ("hmac.key", "tether.key_secret"):
        (tmp_path / "keys" / name).write_text("x")
        os.chmod(tmp_path / "keys" / name, 0o600)
    (tmp_path / "keys" / "tether.key").write_text("public")
    os.chmod(tmp_path / "keys" / "tether.key", 0o644)  # public keys may be readable
    text = (
        SECURE + "[security.curve]\n"
        'server_secret_file = "keys/tether.key_secret"\n'
        'server_public_file = "keys/tether.key"\n'
        'allowed_clients = ["keys/operator.key"]\n'
    )
    with pytest.raises(ConfigError) as caught:
        parse_system(text, base_dir=tmp_path)
    assert caught.value.problems == [
        f"security.curve.allowed_clients[0]: key file {tmp_path}/keys/operator.key does not exist"
    ]


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as caught:
        load_system(missing)
    assert caught.value.path == str(missing)
    assert caught.value.problems == [f"no such file: {missing}"]


def test_directory_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_system(tmp_path)
    binary = tmp_path / "binary.toml"
    binary.write_bytes(b"\xff\xfe[system]")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_system(binary)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    locked = tmp_path / "locked.toml"
    locked.write_text('[system]\nname = "x"\n')
    locked.chmod(0)
    with pytest.raises(ConfigError, match="permission denied"):
        load_system(locked)
