"""Every form of bind, reached by a client in the node's group and by one through a forwarder.

A node and the forwarder of its group, as processes, bind every socket with one form: an
address, an interface name (``lo``), ``*`` or ``0.0.0.0``, on a host whose address (per
the file) is 127.0.0.1, and ``*`` and ``0.0.0.0`` on a file without hosts, which is one
computer reached on loopback. A client in ``vehicle`` subscribes to the node's pub and
asks it directly; one in ``topside`` does both through the forwarder, which connects to
the node by its host's address and is itself reached by its host's address.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rovbus.client import Client
from rovbus.config import load_system
from tests.helpers.daemons import running
from tests.helpers.systemfile import forwarder_toml, node_toml, system_toml

HOST = '[hosts.rov]\naddress = "127.0.0.1"\n'

FORMS = [
    pytest.param(("127.0.0.1", "rov"), id="address"),
    pytest.param(("lo", "rov"), id="interface"),
    pytest.param(("*", "rov"), id="star"),
    pytest.param(("0.0.0.0", "rov"), id="zero"),
    pytest.param(("*", None), id="star-without-hosts"),
    pytest.param(("0.0.0.0", None), id="zero-without-hosts"),
]


@pytest.fixture(scope="module", params=FORMS)
def system(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    bind, host = request.param
    tmp = tmp_path_factory.mktemp("binds")
    path = tmp / "system.toml"
    path.write_text(
        system_toml(
            node_toml("alpha", host=host, bind=bind),
            forwarder_toml("tether", host=host, bind=bind),
            extra=HOST if host else "",
        )
    )
    with running(path, tmp, ["alpha"], ["tether"]):
        yield path


@pytest.mark.parametrize("group", ["vehicle", "topside"])
async def test_a_client_subscribes_and_asks(system: Path, group: str) -> None:
    """The wildcard bug of issue 12: with ``pub = "tcp://*:PORT"``, subscribing from the
    node's group raised ``TransportError cannot connect sub socket to tcp://*:PORT``."""
    async with Client.from_system(load_system(system), group) as client:
        async with client.subscribe(["alpha/hb"]) as sub:
            assert await sub.ready(timeout=10) == {"alpha"}
            heartbeat = await sub.recv()
        assert heartbeat.topic == "alpha/hb"
        reply = await client.request("alpha", "node_info", timeout=5)
        assert reply.content["node"] == "alpha"
        control = await client.request("alpha", "kernel_info", channel="control", timeout=5)
        assert control.content["implementation"] == "rovbus"
        assert client.routes.route("alpha").via == (None if group == "vehicle" else "tether")
