"""The node daemon: one vehicle computer's CAN buses onto the rovbus overlay.

Promises: every configured bus is opened and bridged (frames out as ``can_frame`` or
``can_batch``, commands in through ``can_send_request`` within the bus's allow-list); the
shell, control, stdin, hb and optional JSON iopub channels answer as Jupyter's do; a
heartbeat goes out on a fixed timeline; nothing a peer sends stops the daemon; start-up
failures raise before anything is announced; shutdown is bounded.
"""

from rovbus.node.daemon import NodeDaemon

__all__ = ["NodeDaemon"]
