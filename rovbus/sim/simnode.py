"""A node daemon with simulated devices on its buses and fault injection.

:class:`SimNode` composes a :class:`~rovbus.node.daemon.NodeDaemon` with a
:class:`~rovbus.sim.harness.DeviceBus` per bus that has ``devices`` in the system file
(started after the node's buses are open, stopped before they close) and a
:class:`~rovbus.sim.faults.FaultyBus` under every bus. It answers three more shell
requests, which the node's own tables do not list:

``sim_fault_request``  ``{"bus", "fault": "drop"|"delay"|"corrupt"|"bus-off"|"recover"|"clear",
                       "value"}`` -> ``{"bus", "faults": {settings and counters}}``
``sim_device_request`` ``{"bus", "device": KIND or index, "action": "stop"|"start"}``
                       -> ``{"bus", "device", "running"}``
``sim_status_request`` ``{}`` -> ``{"buses": {BUS: {"faults", "devices", ...}}}``

It has the daemon interface ``run_daemon`` takes, so ``rovbus node`` runs it as it runs a
plain node.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import can

from rovbus.config import SystemConfig
from rovbus.errors import ConfigError
from rovbus.node.daemon import NodeDaemon
from rovbus.sim.faults import Faults, apply_fault, faulty_factory
from rovbus.sim.harness import DeviceBus
from rovbus.wire.message import Message

__all__ = ["DeviceProcess", "SimNode"]


def _open(kwargs: dict[str, Any]) -> can.BusABC:
    return can.Bus(**kwargs)


class SimNode:
    """A node, its simulated devices (``devices=False``: none, e.g. when they run as
    their own process on socketcan) and fault injection on every bus."""

    def __init__(
        self, system: SystemConfig, name: str, *, devices: bool = True, drain_deadline: float = 1.0
    ) -> None:
        config = system.node(name)
        self.name = name
        self.faults: dict[str, Faults] = {bus.name: Faults() for bus in config.buses}
        factories = {
            bus.name: faulty_factory(
                functools.partial(_open, bus.bus_kwargs()), self.faults[bus.name]
            )
            for bus in config.buses
        }
        self.daemon = NodeDaemon(
            system, name, bus_factories=factories, drain_deadline=drain_deadline
        )
        self.device_buses: dict[str, DeviceBus] = {}
        if devices:
            self.device_buses = {
                bus.name: DeviceBus(name, bus) for bus in config.buses if bus.devices
            }
        self.daemon.add_handler("sim_fault_request", self._fault)
        self.daemon.add_handler("sim_device_request", self._device)
        self.daemon.add_handler("sim_status_request", self._status)

    # -- the daemon interface -------------------------------------------------------------

    async def start(self) -> None:
        await self.daemon.start()
        try:
            for devices in self.device_buses.values():
                await devices.start()
        except BaseException:
            await self.aclose()
            raise

    async def serve(self) -> None:
        await self.daemon.serve()

    def request_stop(self) -> None:
        self.daemon.request_stop()

    def status_line(self) -> str:
        line = self.daemon.status_line()
        count = sum(len(d.devices) for d in self.device_buses.values())
        return f"{line}; {count} simulated device(s)" if count else line

    async def aclose(self) -> None:
        for devices in self.device_buses.values():
            await devices.aclose()
        await self.daemon.aclose()

    # -- requests -------------------------------------------------------------------------

    def _bus(self, content: dict[str, Any]) -> str:
        bus = content.get("bus")
        if not isinstance(bus, str) or bus not in self.faults:
            known = ", ".join(self.faults) or "none"
            raise ValueError(f"node {self.name} has no bus {bus!r}; it has {known}")
        return bus

    async def _fault(self, request: Message) -> dict[str, Any]:
        bus = self._bus(request.content)
        fault = request.content.get("fault")
        if not isinstance(fault, str):
            raise ValueError("sim_fault_request needs 'fault': drop, delay, corrupt, bus-off, ...")
        faults = self.faults[bus]
        # bus-off takes hold within 50 ms: the wrapper's receive checks it that often
        apply_fault(faults, fault, request.content.get("value"))
        return {"status": "ok", "bus": bus, "faults": faults.settings()}

    async def _device(self, request: Message) -> dict[str, Any]:
        bus = self._bus(request.content)
        devices = self.device_buses.get(bus)
        if devices is None:
            raise ValueError(f"bus {bus} of node {self.name} has no simulated devices")
        wanted = request.content.get("device")
        index = None
        for i, device in enumerate(devices.devices):
            if wanted in (i, device.kind):
                index = i
                break
        if index is None:
            kinds = ", ".join(d.kind for d in devices.devices)
            raise ValueError(f"no device {wanted!r} on {self.name}/{bus}; it has {kinds}")
        action = request.content.get("action")
        if action == "stop":
            await devices.stop_device(index)
        elif action == "start":
            devices.start_device(index)
        else:
            raise ValueError(f"action must be stop or start, not {action!r}")
        return {
            "status": "ok",
            "bus": bus,
            "device": devices.devices[index].kind,
            "running": devices.running(index),
        }

    async def _status(self, request: Message) -> dict[str, Any]:
        buses: dict[str, Any] = {}
        for bus, faults in self.faults.items():
            entry: dict[str, Any] = {"faults": faults.settings()}
            devices = self.device_buses.get(bus)
            if devices is not None:
                entry.update(devices.status())
            buses[bus] = entry
        return {"status": "ok", "node": self.name, "buses": buses}


class DeviceProcess:
    """The simulated devices of a node's buses as their own process (``rovbus sim
    devices``): for socketcan/vcan, where devices and node need not share a process. It
    has the daemon interface ``run_daemon`` takes (READY=1 once every bus is open)."""

    def __init__(self, system: SystemConfig, name: str) -> None:
        config = system.node(name)
        self.name = f"devices of {name}"
        self.node = name
        self.device_buses = [DeviceBus(name, bus) for bus in config.buses if bus.devices]
        if not self.device_buses:
            raise ConfigError(
                str(system.source), [f"nodes.{name}: no bus of this node has devices"]
            )
        self._stop: asyncio.Event | None = None

    async def start(self) -> None:
        self._stop = asyncio.Event()
        try:
            for devices in self.device_buses:
                await devices.start()
        except BaseException:
            await self.aclose()
            raise

    async def serve(self) -> None:
        assert self._stop is not None
        await self._stop.wait()

    def request_stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def status_line(self) -> str:
        parts = [
            f"{d.name}: {', '.join(x.kind for x in d.devices)}, {d.sent} sent"
            for d in self.device_buses
        ]
        return f"simulated devices of {self.node}: " + "; ".join(parts)

    async def aclose(self) -> None:
        for devices in self.device_buses:
            await devices.aclose()
