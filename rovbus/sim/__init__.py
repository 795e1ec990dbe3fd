"""The virtual vehicle: simulated devices, fault injection, and the demo supervisor.

What this layer promises:

- :class:`SimNode`: a node daemon whose buses carry the simulated devices the system file
  lists (``devices = [{ kind = "thrusters" }, ...]`` on a bus), with fault injection
  (drop, delay, corrupt, bus-off) on every bus, answered as ``sim_*`` requests. ``rovbus
  node`` runs one when a node's buses have devices.
- :class:`DeviceBus`: the devices of one bus on their own python-can bus (in the node's
  process for ``virtual``; any process for socketcan: ``rovbus sim devices``). Devices
  keep a fixed timeline, encode with ``config/demo.dbc`` and never block the loop.
- :class:`Supervisor`: every node (and forwarder) of a system file as a child process,
  each awaited until it reports ``READY=1``; stops them with SIGTERM, then SIGKILL after
  a deadline; kill/restart/tether faults through its control socket.

:mod:`rovbus.sim.view` (the live view's monitor, screen and summary) is imported on its
own: it needs the client layer, which a node does not.

Imports the layers below it (wire, config, can, transport, node, client) and nothing above.
"""

from rovbus.errors import SupervisorError
from rovbus.sim.dbc import DEMO_DBC, MessageCodec, demo_database, load_database
from rovbus.sim.devices import (
    Battery,
    DepthSensor,
    Device,
    Imu,
    LeakSensor,
    Pdu,
    PeriodicDevice,
    Thrusters,
)
from rovbus.sim.faults import Faults, FaultyBus, apply_fault, faulty_factory
from rovbus.sim.harness import DeviceBus, make_device
from rovbus.sim.replay import Replay, read_log
from rovbus.sim.simnode import DeviceProcess, SimNode
from rovbus.sim.supervisor import (
    Child,
    ControlServer,
    Supervisor,
    control_request,
    default_run_dir,
)

__all__ = [
    "DEMO_DBC",
    "Battery",
    "Child",
    "ControlServer",
    "DepthSensor",
    "Device",
    "DeviceBus",
    "DeviceProcess",
    "Faults",
    "FaultyBus",
    "Imu",
    "LeakSensor",
    "MessageCodec",
    "Pdu",
    "PeriodicDevice",
    "Replay",
    "SimNode",
    "Supervisor",
    "SupervisorError",
    "Thrusters",
    "apply_fault",
    "control_request",
    "default_run_dir",
    "demo_database",
    "faulty_factory",
    "load_database",
    "make_device",
    "read_log",
]
