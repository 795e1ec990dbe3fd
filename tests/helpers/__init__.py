"""What the tests and the tools under tools/ share: one module for each helper.

- ``data``: where the repository and the CAN captures (tests/data/can) are
- ``ports``: free TCP ports on loopback that no two callers get
- ``systemfile``: system files on fresh ports (``node_toml``, ``forwarder_toml``,
  ``system_toml``)
- ``notify``: systemd's side of sd_notify (``FakeSystemd``)
- ``daemons``: ``rovbus node``/``rovbus forwarder`` as processes, up to READY=1
- ``waiting``: poll a condition with a deadline (``until``, ``eventually``)
- ``leaks``: the ZeroMQ sockets a test left open (tests/conftest.py checks every test)
- ``loadnode``: a node daemon with frame writers in its own process (tools/soak.py,
  tools/bench_node.py)
- ``numbered``: a publisher that numbers its messages per topic by hand
- ``frames``: a ``CanFrame`` compared with the python-can message it was made of

Helpers of one folder's tests live in that folder, in a module named for what it holds
(tests/node/running.py, tests/forwarder/systems.py, tests/reliability/threads.py,
tests/cli/commands.py, ...); a conftest.py holds only fixtures and hooks.

The tools are scripts run from anywhere (``python tools/soak.py``): each puts the
repository on ``sys.path`` first, then imports ``tests.helpers`` like a test does.
"""
