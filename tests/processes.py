"""Old import name of tests/helpers/daemons.py (and notify.py); import from there."""

from tests.helpers.daemons import daemon_process, forwarder_process, node_process, running
from tests.helpers.notify import FakeSystemd

__all__ = ["FakeSystemd", "daemon_process", "forwarder_process", "node_process", "running"]
