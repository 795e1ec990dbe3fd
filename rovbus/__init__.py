"""rovbus: a brokerless overlay message bus for remotely operated vehicles.

Node daemons bridge CAN buses onto ZeroMQ; every message is a Jupyter wire envelope.
The layers, lowest first, are ``wire``, ``config``, ``can``, ``transport``, ``node``,
``forwarder``, ``client``, ``sim`` and ``cli``; each imports only from those below it.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
