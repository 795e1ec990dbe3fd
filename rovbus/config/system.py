"""The root of the system file: :class:`SystemConfig`.

One TOML file describes the whole system; every daemon and tool loads it and picks its
own part by name with :meth:`SystemConfig.node` or :meth:`SystemConfig.forwarder`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from rovbus.config.models import (
    ForwarderConfig,
    GroupConfig,
    HostConfig,
    NodeConfig,
    SecurityConfig,
    SystemSettings,
)
from rovbus.errors import ConfigError

__all__ = ["SystemConfig"]


class SystemConfig(BaseModel):
    """The whole system file: ``[system]``, ``[security]``, groups, hosts, nodes, forwarders.

    Build it with :func:`rovbus.config.load_system` or :func:`rovbus.config.parse_system`,
    which also run the whole-file checks; validating the model alone does not.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    system: SystemSettings
    security: SecurityConfig | None = None
    groups: dict[str, GroupConfig] = Field(default_factory=dict)
    #: the computers; none declared: the whole file is one computer (rovbus.config.hosts)
    hosts: dict[str, HostConfig] = Field(default_factory=dict)
    nodes: dict[str, NodeConfig] = Field(default_factory=dict)
    forwarders: dict[str, ForwarderConfig] = Field(default_factory=dict)

    _source: Path | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any, /) -> None:
        # each entry learns its table key, so code handed a NodeConfig knows whose it is
        for table in (self.groups, self.hosts, self.nodes, self.forwarders):
            for key, entry in table.items():
                entry._name = key

    @property
    def source(self) -> Path | None:
        """The file this was loaded from (None when parsed from a string)."""
        return self._source

    @property
    def name(self) -> str:
        """``system.name``."""
        return self.system.name

    def _error(self, problem: str) -> ConfigError:
        return ConfigError(str(self._source) if self._source else "<string>", [problem])

    def node(self, name: str) -> NodeConfig:
        """The node called ``name``; ConfigError naming it and the known nodes otherwise."""
        try:
            return self.nodes[name]
        except KeyError:
            known = ", ".join(self.nodes) or "none"
            raise self._error(f"nodes.{name}: no such node; known nodes: {known}") from None

    def forwarder(self, name: str) -> ForwarderConfig:
        """The forwarder called ``name``; ConfigError naming it and the known ones otherwise."""
        try:
            return self.forwarders[name]
        except KeyError:
            known = ", ".join(self.forwarders) or "none"
            raise self._error(
                f"forwarders.{name}: no such forwarder; known forwarders: {known}"
            ) from None

    def nodes_in(self, group: str) -> list[NodeConfig]:
        """The nodes of ``group``, in file order."""
        return [node for node in self.nodes.values() if node.group == group]

    def forwarders_into(self, group: str) -> list[ForwarderConfig]:
        """The forwarders that serve ``group`` (their outer group), in file order."""
        return [fwd for fwd in self.forwarders.values() if fwd.outer == group]

    def forwarder_out_of(self, group: str) -> ForwarderConfig | None:
        """The forwarder whose inner side is ``group`` (at most one), or None."""
        for fwd in self.forwarders.values():
            if fwd.inner == group:
                return fwd
        return None

    def heartbeat_interval_of(self, node: str) -> float:
        """The heartbeat interval of ``node``: its own override or ``system``'s."""
        own = self.node(node).heartbeat_interval
        return own if own is not None else self.system.heartbeat_interval

    def hmac_key(self) -> bytes:
        """The signing key; ``b""`` (no signing) when there is no ``[security]`` table."""
        return self.security.read_key() if self.security is not None else b""

    @property
    def signing(self) -> bool:
        """True when messages are signed (a ``[security]`` table is present)."""
        return self.security is not None

    @property
    def curve(self) -> bool:
        """True when the forwarders' outer side uses CURVE encryption."""
        return self.security is not None and self.security.curve is not None
