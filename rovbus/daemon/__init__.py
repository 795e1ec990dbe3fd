"""What the node and forwarder daemons share: running as a process (``process.py``,
systemd's notify protocol in ``sdnotify.py``), the heartbeat timeline (``timeline.py``),
and answering requests (``dispatch.py``: handlers by message type, a worker per client)."""
