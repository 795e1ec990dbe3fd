"""Running a bus's simulated devices: one python-can bus, a task per device, two threads.

A :class:`DeviceBus` opens its own python-can bus on the channel of a node's bus (for
python-can's ``virtual`` interface that has to be in the node's process: the virtual bus
delivers a frame to every other bus object on the channel of that process; on socketcan it
may be any process). The devices of that bus share it:

- each device runs as an asyncio task on its own fixed timeline;
- what devices emit goes into a bounded queue (``TX_QUEUE`` batches; when full the newest
  batch is dropped and counted) drained by one send thread: ``bus.send`` never runs on the
  event loop, and a device never waits for the bus;
- one receive thread reads the bus (the queue of a virtual bus object grows without bound
  if nobody reads it) and hands frames a device accepts to the loop, in order.

A device can be stopped and started again (fault injection); a device that raises is
counted and logged, and the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Any

import can
from cantools.database.can import Database

from rovbus.config.models import BusConfig, DeviceConfig
from rovbus.errors import CanFailed
from rovbus.sim.dbc import demo_database
from rovbus.sim.devices import PERIODIC, Device
from rovbus.sim.replay import Replay

__all__ = ["DeviceBus", "make_device"]

log = logging.getLogger(__name__)

TX_QUEUE = 1024
_STOP = object()


def make_device(config: DeviceConfig, db: Database | None = None, seed: int = 0) -> Device:
    """The device a ``devices`` entry describes (``db``: default the demo DBC)."""
    if config.kind == "replay":
        return Replay(config)
    return PERIODIC[config.kind](config, db or demo_database(), seed)


class DeviceBus:
    """The simulated devices of one bus of one node."""

    def __init__(
        self,
        node: str,
        config: BusConfig,
        *,
        devices: Sequence[Device] | None = None,
        bus_factory: Callable[[], can.BusABC] | None = None,
    ) -> None:
        self.node = node
        self.config = config
        if devices is None:
            devices = [
                make_device(d, seed=zlib.crc32(f"{node}/{config.name}/{i}".encode()))
                for i, d in enumerate(config.devices)
            ]
        self.devices = list(devices)
        self._factory = bus_factory or (lambda: can.Bus(**config.device_kwargs()))
        self._bus: can.BusABC | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._tx: queue.Queue[object] = queue.Queue(TX_QUEUE)
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sent = 0
        self.tx_dropped = 0
        self.tx_errors = 0
        self.received = 0
        self.device_errors = 0
        self.last_error: str | None = None

    @property
    def name(self) -> str:
        return self.config.name

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the bus and start every device; CanFailed if the bus cannot be opened."""
        self._loop = asyncio.get_running_loop()
        try:
            self._bus = await asyncio.to_thread(self._factory)
        except Exception as exc:
            raise CanFailed(
                f"devices of {self.node}/{self.name}: cannot open {self.config.interface} "
                f"channel {self.config.channel!r}: {exc}"
            ) from exc
        for target, label in ((self._send_worker, "tx"), (self._recv_worker, "rx")):
            thread = threading.Thread(
                target=target, name=f"rovbus-sim-{self.name}-{label}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        for index in range(len(self.devices)):
            self.start_device(index)

    def start_device(self, index: int) -> bool:
        """Start device ``index`` (False if it runs already)."""
        task = self._tasks.get(index)
        if task is not None and not task.done():
            return False
        device = self.devices[index]
        self._tasks[index] = asyncio.create_task(
            self._run(device), name=f"rovbus-sim-{self.node}-{self.name}-{device.kind}"
        )
        return True

    async def stop_device(self, index: int) -> bool:
        """Stop device ``index`` (False if it was not running)."""
        task = self._tasks.pop(index, None)
        if task is None or task.done():
            return False
        task.cancel()
        await asyncio.wait({task})
        return True

    def running(self, index: int) -> bool:
        task = self._tasks.get(index)
        return task is not None and not task.done()

    async def _run(self, device: Device) -> None:
        try:
            await device.run(self._emit)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.device_errors += 1
            self.last_error = f"{device.kind}: {exc}"
            log.exception("simulated %s on %s/%s failed", device.kind, self.node, self.name)

    async def aclose(self) -> None:
        """Stop the devices and the threads, shut the bus down. Idempotent."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        self._stopping.set()
        with contextlib.suppress(queue.Full):
            self._tx.put_nowait(_STOP)
        threads, self._threads = self._threads, []
        for thread in threads:
            await asyncio.to_thread(thread.join, 1.0)
        bus, self._bus = self._bus, None
        if bus is not None:
            with contextlib.suppress(Exception):
                bus.shutdown()

    # -- transmit -------------------------------------------------------------------------

    def _emit(self, frames: list[can.Message]) -> None:
        if not frames:
            return
        try:
            self._tx.put_nowait(frames)
        except queue.Full:
            self.tx_dropped += len(frames)

    def _send_worker(self) -> None:
        while True:
            item = self._tx.get()
            if item is _STOP or self._stopping.is_set():
                return
            bus = self._bus
            if bus is None:
                return
            assert isinstance(item, list)
            for msg in item:
                try:
                    bus.send(msg, timeout=0.1)
                    self.sent += 1
                except Exception as exc:  # a full socketcan buffer, a bus in error
                    self.tx_errors += 1
                    self.last_error = f"send: {exc}"

    # -- receive --------------------------------------------------------------------------

    def _recv_worker(self) -> None:
        bus, loop = self._bus, self._loop
        assert bus is not None
        assert loop is not None
        while not self._stopping.is_set():
            try:
                msg = bus.recv(0.1)
            except Exception as exc:
                self.last_error = f"receive: {exc}"
                if self._stopping.wait(0.5):
                    return
                continue
            if msg is None:
                continue
            self.received += 1
            wanted = [d for d in self.devices if d.accepts(msg.arbitration_id, msg.is_extended_id)]
            if wanted:
                with contextlib.suppress(RuntimeError):  # the loop closed
                    loop.call_soon_threadsafe(self._deliver, wanted, msg)

    def _deliver(self, devices: list[Device], msg: can.Message) -> None:
        assert self._loop is not None
        now = self._loop.time()
        for device in devices:
            try:
                device.on_frame(msg, now)
            except Exception as exc:
                self.device_errors += 1
                self.last_error = f"{device.kind}: {exc}"

    # -- status ---------------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "bus": self.name,
            "sent": self.sent,
            "tx_dropped": self.tx_dropped,
            "tx_errors": self.tx_errors,
            "received": self.received,
            "device_errors": self.device_errors,
            "last_error": self.last_error,
            "devices": [
                {**d.status(), "running": self.running(i)} for i, d in enumerate(self.devices)
            ],
        }
