"""What the tests and the tools under tools/ share: one module for each helper.

- ``data``: where the repository and the CAN captures (tests/data/can) are
- ``ports``: free TCP ports on loopback that no two callers get
- ``systemfile``: system files on fresh ports (``node_toml``, ``forwarder_toml``,
  ``system_toml``)
- ``notify``: systemd's side of sd_notify (``FakeSystemd``)
- ``daemons``: ``rovbus node``/``rovbus forwarder`` as processes, up to READY=1
- ``waiting``: poll a condition with a deadline (``until``, ``eventually``)
- ``leaks``: the ZeroMQ sockets a test left open (checked for every test by tests/conftest.py)
- ``loadnode``: a node daemon with frame writers in its own process (tools/soak.py,
  tools/bench_node.py)

The tools are scripts run from anywhere (``python tools/soak.py``): each puts the
repository on ``sys.path`` first, then imports ``tests.helpers`` like a test does.
"""
