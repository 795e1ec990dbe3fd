"""The pydantic models of the system file, one per TOML table.

Every model forbids unknown keys, is frozen, and validates strictly: TOML already has
integers, floats, booleans and strings, so a string where a number belongs is an error
rather than something to coerce. Relative file paths resolve against the folder of the
system file (the ``base_dir`` in the validation context).

Cross-table rules (unique names and endpoints, groups that exist, a tree of forwarders,
key files) live in :mod:`rovbus.config.checks`; these models check one value at a time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationInfo,
    field_validator,
)

from rovbus.config.endpoints import Endpoint, parse_address, parse_endpoint
from rovbus.config.helm import HelmConfig
from rovbus.config.problems import describe
from rovbus.config.txallow import TxAllowField, TxAllowList
from rovbus.errors import ConfigError

__all__ = [
    "BatchConfig",
    "BatteryDevice",
    "BusConfig",
    "CanFilter",
    "CurveConfig",
    "DepthDevice",
    "DeviceConfig",
    "ForwarderConfig",
    "ForwarderEndpoints",
    "GroupConfig",
    "HostConfig",
    "ImuDevice",
    "LeakDevice",
    "LogLevel",
    "NodeConfig",
    "NodeEndpoints",
    "PduDevice",
    "ReplayDevice",
    "SecurityConfig",
    "SystemSettings",
    "ThrustersDevice",
]

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _Named(_Model):
    """A table whose name is its key in the parent table (``[nodes.NAME]``)."""

    _name: str = PrivateAttr(default="")

    @property
    def name(self) -> str:
        """The table key this entry was declared under."""
        return self._name


# -- value types ---------------------------------------------------------------------------


def _validate_endpoint(value: object) -> Endpoint:
    if isinstance(value, Endpoint):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected an endpoint string like tcp://HOST:PORT, got {describe(value)}")
    return parse_endpoint(value)


EndpointField = Annotated[
    Endpoint, PlainValidator(_validate_endpoint), PlainSerializer(str, return_type=str)
]


def _validate_address(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an address such as 192.168.2.2, got {describe(value)}")
    return parse_address(value)


#: an address by which others reach a host (IPv6 kept in brackets, as in an endpoint)
HostAddress = Annotated[str, PlainValidator(_validate_address)]


def _validate_path(value: object, info: ValidationInfo) -> Path:
    if isinstance(value, Path):
        path = value
    elif isinstance(value, str) and value.strip():
        path = Path(value).expanduser()
    else:
        raise ValueError(f"expected a file path, got {describe(value)}")
    if not path.is_absolute():
        context = info.context if isinstance(info.context, dict) else {}
        base = context.get("base_dir")
        path = (Path(base) if base is not None else Path.cwd()) / path
    return path


#: a file path; relative paths resolve against the folder of the system file
FilePath = Annotated[Path, PlainValidator(_validate_path), PlainSerializer(str, return_type=str)]


def _validate_channel(value: object) -> str | int:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise ValueError(f"expected a channel name or number, got {describe(value)}")


Channel = Annotated[str | int, PlainValidator(_validate_channel)]


# -- [system] and [security] ---------------------------------------------------------------


class SystemSettings(_Model):
    """``[system]``: what every node and tool shares."""

    name: str = Field(min_length=1)
    serializer: Literal["msgpack", "json"] = "msgpack"
    heartbeat_interval: float = Field(default=1.0, gt=0)
    dead_after: int = Field(default=3, ge=1)
    #: the largest message frame (bytes) a node accepts on shell, control, stdin and hb;
    #: a peer that sends more is disconnected by ZeroMQ (``ZMQ_MAXMSGSIZE``)
    max_message_size: int = Field(default=1 << 20, ge=1024)
    #: the longest subscription prefix (bytes) a node's or forwarder's pub accepts; a
    #: subscriber that sends a longer one is disconnected by ZeroMQ
    max_prefix: int = Field(default=256, ge=16, le=65_536)
    #: subscriptions the subscribers of one group may hold at one publisher; a publisher
    #: also holds what the forwarder out of its group may pass (rovbus.config.subscriptions)
    max_subscriptions: int = Field(default=1024, ge=1)


class CurveConfig(_Model):
    """``[security.curve]``: CURVE encryption of the forwarder's outer side.

    The forwarder (the server) needs its secret and public key and the public keys of the
    clients it admits; operator tools need the server's public key and their own pair.
    """

    server_secret_file: FilePath | None = None
    server_public_file: FilePath
    allowed_clients: list[FilePath] = Field(default_factory=list)
    client_secret_file: FilePath | None = None
    client_public_file: FilePath | None = None

    def secret_files(self) -> list[tuple[list[str | int], Path]]:
        """``(key path under security.curve, file)`` of each secret key file named."""
        named = [
            ("server_secret_file", self.server_secret_file),
            ("client_secret_file", self.client_secret_file),
        ]
        return [([key], path) for key, path in named if path is not None]

    def public_files(self) -> list[tuple[list[str | int], Path]]:
        """``(key path under security.curve, file)`` of each public key file named."""
        found: list[tuple[list[str | int], Path]] = [
            (["server_public_file"], self.server_public_file)
        ]
        found += [(["allowed_clients", i], path) for i, path in enumerate(self.allowed_clients)]
        if self.client_public_file is not None:
            found.append((["client_public_file"], self.client_public_file))
        return found


class SecurityConfig(_Model):
    """``[security]``: message signing, replay protection and optional CURVE."""

    key_file: FilePath
    signature_scheme: str = "hmac-sha256"
    replay_window: int = Field(default=4096, ge=1)
    #: seconds: a message dated longer ago is refused (0: no age check; needs clocks in
    #: step, which a computer without a real-time clock has only once it synchronized)
    max_age: float = Field(default=0.0, ge=0)
    #: seconds a message may be dated ahead of the receiver's clock where max_age is set
    max_skew: float = Field(default=1.0, ge=0)
    curve: CurveConfig | None = None

    @field_validator("signature_scheme")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        digest = value.removeprefix("hmac-")
        if not value.startswith("hmac-") or digest not in hashlib.algorithms_available:
            raise ValueError(
                f'expected "hmac-" and a hashlib digest name such as "hmac-sha256", '
                f"got {describe(value)}"
            )
        return value

    @property
    def digest_name(self) -> str:
        """The hashlib name of the digest, e.g. ``"sha256"``."""
        return self.signature_scheme.removeprefix("hmac-")

    def read_key(self) -> bytes:
        """The HMAC key: the key file's bytes without surrounding whitespace.

        Raises ConfigError (naming ``security.key_file``) if the file cannot be read or
        holds nothing.
        """
        try:
            key = self.key_file.read_bytes().strip()
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ConfigError(
                str(self.key_file), [f"security.key_file: cannot read {self.key_file}: {reason}"]
            ) from exc
        if not key:
            raise ConfigError(str(self.key_file), [f"security.key_file: {self.key_file} is empty"])
        return key


# -- [groups], [hosts], [nodes], [forwarders] ----------------------------------------------


class GroupConfig(_Named):
    """``[groups.NAME]``: nodes on one network segment."""

    description: str = ""


class HostConfig(_Named):
    """``[hosts.NAME]``: one computer, and the addresses by which others reach it.

    Members of a group connect to what the host binds for that group (its nodes' sockets,
    a forwarder's outer side) at ``addresses[group]``, else at ``address``; the bind
    string never says where to connect (rovbus.config.hosts).
    """

    description: str = ""
    #: the machine's hostname, by which ``rovbus node`` and ``rovbus forwarder`` tell that
    #: they run here (default: the table key)
    hostname: str | None = Field(default=None, min_length=1)
    #: the address every group reaches this host by, unless ``addresses`` names the group
    address: HostAddress | None = None
    #: the address per group, for a host on several networks (the vehicle LAN, the tether)
    addresses: dict[str, HostAddress] = Field(default_factory=dict)

    def address_for(self, group: str) -> str | None:
        """The address members of ``group`` reach this host by (None: the file says none)."""
        return self.addresses.get(group, self.address)

    def all_addresses(self) -> list[str]:
        """Every address the file gives this host, without repeats."""
        found = [*self.addresses.values(), *([self.address] if self.address else [])]
        return list(dict.fromkeys(found))


class CanFilter(_Model):
    """One receive filter, as python-can's ``set_filters`` takes it."""

    id: int = Field(ge=0)
    mask: int = Field(ge=0)
    extended: bool = False

    def to_python_can(self) -> dict[str, int | bool]:
        """The filter as a python-can ``can_filters`` entry."""
        return {"can_id": self.id, "can_mask": self.mask, "extended": self.extended}


class BatchConfig(_Model):
    """``batch``: many CAN frames per published message."""

    max_frames: int = Field(default=64, ge=1, le=65535)
    max_delay_ms: float = Field(default=2.0, ge=0)


# -- simulated devices on a bus (rovbus.sim runs them) -------------------------------------


def _validate_can_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected a CAN ID such as 0x200, got {describe(value)}")
    if not 0 <= value <= 0x7FF:
        raise ValueError(f"0x{value:X} is out of the 11-bit range 0x0-0x7FF")
    return value


#: an 11-bit CAN ID (the demo devices speak standard frames)
StandardId = Annotated[int, PlainValidator(_validate_can_id)]


class _Device(_Model):
    rate_hz: float = Field(gt=0, le=1000)

    def ids(self) -> list[int]:
        """The CAN IDs this device transmits."""
        return []


class ThrustersDevice(_Device):
    """``count`` thruster ESCs: setpoint ``setpoint_id + i`` (int16 rpm) in, ``stop_id``
    stops all; status ``base_id + i`` (rpm, current, temperature) out, per ESC."""

    kind: Literal["thrusters"]
    count: int = Field(default=8, ge=1, le=16)
    setpoint_id: StandardId = 0x200
    stop_id: StandardId = 0x210
    base_id: StandardId = 0x220
    rate_hz: float = Field(default=20.0, gt=0, le=1000)

    def ids(self) -> list[int]:
        return [self.base_id + i for i in range(self.count)]


class DepthDevice(_Device):
    """A pressure/depth sensor: depth, pressure, water temperature."""

    kind: Literal["depth"]
    base_id: StandardId = 0x120
    rate_hz: float = Field(default=10.0, gt=0, le=1000)
    max_depth: float = Field(default=120.0, gt=0, le=600)

    def ids(self) -> list[int]:
        return [self.base_id]


class ImuDevice(_Device):
    """An IMU/compass: heading, pitch, roll, yaw rate."""

    kind: Literal["imu"]
    base_id: StandardId = 0x110
    rate_hz: float = Field(default=50.0, gt=0, le=1000)

    def ids(self) -> list[int]:
        return [self.base_id]


class BatteryDevice(_Device):
    """A battery monitor: pack voltage, current, state of charge, temperature."""

    kind: Literal["battery"]
    base_id: StandardId = 0x300
    rate_hz: float = Field(default=2.0, gt=0, le=1000)
    cells: int = Field(default=12, ge=1, le=32)
    capacity_ah: float = Field(default=40.0, gt=0)

    def ids(self) -> list[int]:
        return [self.base_id]


class LeakDevice(_Device):
    """A leak detector: leak flag per probe, housing humidity."""

    kind: Literal["leak"]
    base_id: StandardId = 0x310
    rate_hz: float = Field(default=1.0, gt=0, le=1000)

    def ids(self) -> list[int]:
        return [self.base_id]


class PduDevice(_Device):
    """A power distribution unit: relay commands ``command_id + i`` (byte 0: 0 off, 1 on),
    lights level at ``lights_id``; status (relays, bus voltage, current) at ``base_id``."""

    kind: Literal["pdu"]
    command_id: StandardId = 0x400
    lights_id: StandardId = 0x420
    base_id: StandardId = 0x440
    rate_hz: float = Field(default=2.0, gt=0, le=1000)

    def ids(self) -> list[int]:
        return [self.base_id]


class ReplayDevice(_Model):
    """Plays a log file python-can reads (candump, asc, blf, trc, ...) with its original
    timing (``speed`` scales it), from the start again if ``loop``."""

    kind: Literal["replay"]
    file: FilePath
    loop: bool = False
    speed: float = Field(default=1.0, gt=0, le=1000)

    def ids(self) -> list[int]:
        return []


DeviceConfig = Annotated[
    ThrustersDevice
    | DepthDevice
    | ImuDevice
    | BatteryDevice
    | LeakDevice
    | PduDevice
    | ReplayDevice,
    Field(discriminator="kind"),
]


class BusConfig(_Model):
    """``[[nodes.NAME.buses]]``: one CAN bus opened through python-can."""

    name: str = Field(min_length=1)
    interface: str = Field(min_length=1)
    channel: Channel
    bitrate: int | None = Field(default=None, gt=0)
    data_bitrate: int | None = Field(default=None, gt=0)
    fd: bool = False
    options: dict[str, Any] = Field(default_factory=dict)
    filters: list[CanFilter] = Field(default_factory=list)
    tx_allow: TxAllowField = TxAllowList()
    #: the actuator frames that need the helm, and their safe state (rovbus.config.helm)
    helm: HelmConfig | None = None
    batch: BatchConfig | None = None
    queue_size: int = Field(default=1024, ge=1)
    #: simulated devices on this bus (``rovbus node`` runs them in the node process)
    devices: list[DeviceConfig] = Field(default_factory=list)

    def allows(self, arbitration_id: int, *, extended: bool) -> bool:
        """True when this node may transmit ``arbitration_id`` (29-bit when ``extended``)
        on this bus."""
        return self.tx_allow.allows(arbitration_id, extended=extended)

    def can_filters(self) -> list[dict[str, int | bool]] | None:
        """The filters as python-can's ``can_filters`` argument (None: receive all)."""
        return [f.to_python_can() for f in self.filters] or None

    def bus_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``can.Bus(**kwargs)``."""
        kwargs: dict[str, Any] = {"interface": self.interface, "channel": self.channel}
        if self.bitrate is not None:
            kwargs["bitrate"] = self.bitrate
        if self.fd:
            kwargs["fd"] = True
        if self.data_bitrate is not None:
            kwargs["data_bitrate"] = self.data_bitrate
        if self.filters:
            kwargs["can_filters"] = self.can_filters()
        kwargs.update(self.options)
        return kwargs

    def device_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the simulated devices' own bus on this channel: no
        receive filters (the node's filters are the node's)."""
        kwargs = self.bus_kwargs()
        kwargs.pop("can_filters", None)
        return kwargs


class NodeEndpoints(_Model):
    """``[nodes.NAME.endpoints]``: where the node binds each channel."""

    pub: EndpointField
    shell: EndpointField
    control: EndpointField
    stdin: EndpointField
    hb: EndpointField
    iopub: EndpointField | None = None

    def items(self) -> list[tuple[str, Endpoint]]:
        """``(channel, endpoint)`` for every endpoint set, in table order."""
        return [(k, v) for k, v in self if isinstance(v, Endpoint)]


class NodeConfig(_Named):
    """``[nodes.NAME]``: one node daemon, its sockets and its CAN buses."""

    group: str
    #: the host (``[hosts.NAME]``) this node runs on; required once the file has hosts
    host: str | None = None
    log_level: LogLevel | None = None
    heartbeat_interval: float | None = Field(default=None, gt=0)
    connection_file: FilePath | None = None
    #: subscriptions one peer address may hold at this node's pub (default: what the
    #: forwarder out of its group may pass, plus ``system.max_subscriptions``)
    max_subscriptions_per_peer: int | None = Field(default=None, ge=1)
    #: transmitted frames the node keeps, with who caused each (``tx_log_request``)
    tx_log: int = Field(default=1000, ge=0, le=65_536)
    endpoints: NodeEndpoints
    buses: list[BusConfig] = Field(default_factory=list)

    def bus(self, name: str) -> BusConfig:
        """The bus called ``name``; ConfigError listing the known buses if there is none."""
        for bus in self.buses:
            if bus.name == name:
                return bus
        known = ", ".join(b.name for b in self.buses) or "none"
        raise ConfigError(
            f"nodes.{self.name}", [f"nodes.{self.name}: no bus {name!r}; known buses: {known}"]
        )


class ForwarderEndpoints(_Model):
    """``[forwarders.NAME.endpoints]``: the forwarder's sockets on the outer side."""

    pub: EndpointField
    request: EndpointField
    control: EndpointField

    def items(self) -> list[tuple[str, Endpoint]]:
        """``(channel, endpoint)`` for every endpoint, in table order."""
        return [(k, v) for k, v in self if isinstance(v, Endpoint)]


class ForwarderConfig(_Named):
    """``[forwarders.NAME]``: the boundary between an inner and an outer group."""

    #: the host (``[hosts.NAME]``) this forwarder runs on; required once the file has hosts
    host: str | None = None
    inner: str
    outer: str
    #: subscriptions its outer pub holds (default: what the forwarder out of its outer
    #: group may pass, plus ``system.max_subscriptions``)
    max_subscriptions: int | None = Field(default=None, ge=1)
    endpoints: ForwarderEndpoints
