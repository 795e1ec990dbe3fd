"""The vcan interfaces: whether one exists, and `ip link` on them."""

from __future__ import annotations

import subprocess
from pathlib import Path


def has_interface(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def ip_link(*args: str) -> None:
    """``ip link ARGS``; raises CalledProcessError with ip's message."""
    subprocess.run(["ip", "link", *args], check=True, capture_output=True, text=True, timeout=10)
