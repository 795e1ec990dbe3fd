"""Fixtures for the command tests: a node daemon as a real process, and `rovbus` runners.

Each command runs as ``python -m rovbus ...`` with ``ROVBUS_CONFIG`` pointing at the system
file, against a node subprocess on python-can's virtual bus (in-process only, so the node's
CAN traffic is observed through its pub stream: frames it transmitted come back as ``tx``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.commands import Bus, node_running


@pytest.fixture(scope="module")
def bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bus]:
    """One node ``alpha`` (bus ``can0``, every ID allowed) shared by a module's tests.

    Commands connect as members of its group (``--group vehicle``): the test system has
    no forwarder, so the default operator group would reach nothing."""
    with node_running(tmp_path_factory.mktemp("cli")) as running:
        yield running
