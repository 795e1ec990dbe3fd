"""Two computers on one machine: network namespaces joined by a veth pair.

Each test gets a fresh pair of namespaces, ``rov`` and ``console``, with a veth between
them: 10.231.0.1 in ``rov``, 10.231.0.2 in ``console``, and each its own loopback. These
addresses exist only inside the two namespaces, so no traffic leaves them. Creating them
needs root (``CAP_NET_ADMIN`` and ``CAP_SYS_ADMIN``) and a kernel that allows network
namespaces; where either is missing the tests are skipped, saying why. The namespaces
(and the veth with them) are deleted after each test, whatever its outcome."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.netns.namespaces import CONSOLE_ADDRESS, ROV_ADDRESS, Namespaces


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


def _must(*args: str) -> None:
    done = _ip(*args)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    if shutil.which("ip") is None:
        pytest.skip("no `ip` command (iproute2) to make network namespaces")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CAP_NET_ADMIN and CAP_SYS_ADMIN)")
    tag = f"{os.getpid() % 100_000}"
    ns = Namespaces(rov=f"rovbus-{tag}-rov", console=f"rovbus-{tag}-con", rov_link=f"rv{tag}")
    made: list[str] = []
    try:
        for name in (ns.rov, ns.console):
            done = _ip("netns", "add", name)
            if done.returncode != 0:
                pytest.skip(
                    f"this kernel or container allows no network namespaces: {done.stderr.strip()}"
                )
            made.append(name)
        console_link = f"cn{tag}"
        _must(
            "link",
            "add",
            ns.rov_link,
            "netns",
            ns.rov,
            "type",
            "veth",
            "peer",
            "name",
            console_link,
            "netns",
            ns.console,
        )
        for name, link, address in (
            (ns.rov, ns.rov_link, ROV_ADDRESS),
            (ns.console, console_link, CONSOLE_ADDRESS),
        ):
            _must("-n", name, "addr", "add", f"{address}/24", "dev", link)
            _must("-n", name, "link", "set", link, "up")
            _must("-n", name, "link", "set", "lo", "up")
        yield ns
    finally:
        for name in made:  # deleting a namespace deletes its end of the veth, and so the pair
            _ip("netns", "del", name)
