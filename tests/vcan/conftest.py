"""vcan tests: python-can's socketcan interface and rovbus on real vcan interfaces.

Every test in this folder is skipped when ``vcan0`` does not exist. Create it with
``tools/vcan-up.sh`` (Linux with sudo), or run the folder inside a User-Mode-Linux guest that
has vcan0 and vcan1 up: ``tools/vcan-vm.sh .venv/bin/pytest -m vcan tests/vcan``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.vcan.links import has_interface, ip_link

SKIP_REASON = (
    "vcan0 is missing: run tools/vcan-up.sh, "
    "or tools/vcan-vm.sh .venv/bin/pytest -m vcan tests/vcan"
)

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if has_interface("vcan0"):
        return
    skip = pytest.mark.skip(reason=SKIP_REASON)
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(skip)


@pytest.fixture
def link_admin() -> None:
    """Skip unless this process may take vcan1 down and up (root or CAP_NET_ADMIN)."""
    if not has_interface("vcan1"):
        pytest.skip("vcan1 is missing: run tools/vcan-up.sh (it creates vcan0 and vcan1)")
    try:
        ip_link("set", "vcan1", "up")  # a no-op that needs the same right as "down"
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot change vcan1's state here ({exc}); run as root or in tools/vcan-vm.sh")
