"""The system file: one TOML file describing the whole system, loaded and checked.

What this layer promises:

- :func:`load_system` and :func:`parse_system` return a :class:`SystemConfig` only when the
  whole file is sound: every value has the right type and range (pydantic, ``extra="forbid"``,
  strict), and the whole-file rules hold (:mod:`rovbus.config.checks`: unique names,
  endpoints unique on each host, groups and hosts that exist, binds that work on their
  host, forwarders that form a tree, CAN filter and ID ranges, key files that exist and
  are private).
- Otherwise they raise one :class:`~rovbus.errors.ConfigError` that lists *every* problem,
  each starting with its key path in TOML terms (``nodes.propulsion.buses[0].bitrate:
  expected an integer, got "fast"``).
- The result is frozen. Each node, forwarder and group knows its ``name`` (its table key);
  endpoints are parsed :class:`Endpoint` values and ``tx_allow`` is a :class:`TxAllowList`
  with an O(log n) :meth:`~TxAllowList.allows`.

- Where everything is reached: :mod:`rovbus.config.hosts` (which computer binds what, and
  the address peers connect to) and :mod:`rovbus.config.reach` (from a group, a host or a
  forwarder: the route to each node and the pubs to read), the one model that clients,
  forwarders and connection files use.

pydantic lives only in this layer; other layers read the models' attributes.
"""

from __future__ import annotations

from rovbus.config.checks import run_checks
from rovbus.config.endpoints import WILDCARD_HOSTS, Endpoint, parse_endpoint
from rovbus.config.load import load_system, parse_system
from rovbus.config.models import (
    BatchConfig,
    BusConfig,
    CanFilter,
    CurveConfig,
    ForwarderConfig,
    ForwarderEndpoints,
    GroupConfig,
    HostConfig,
    LogLevel,
    NodeConfig,
    NodeEndpoints,
    SecurityConfig,
    SystemSettings,
)
from rovbus.config.problems import format_key_path
from rovbus.config.system import SystemConfig
from rovbus.config.txallow import (
    MAX_EXTENDED_ID,
    MAX_STANDARD_ID,
    AllowEntry,
    TxAllowList,
    parse_entry,
)

__all__ = [
    "MAX_EXTENDED_ID",
    "MAX_STANDARD_ID",
    "WILDCARD_HOSTS",
    "AllowEntry",
    "BatchConfig",
    "BusConfig",
    "CanFilter",
    "CurveConfig",
    "Endpoint",
    "ForwarderConfig",
    "ForwarderEndpoints",
    "GroupConfig",
    "HostConfig",
    "LogLevel",
    "NodeConfig",
    "NodeEndpoints",
    "SecurityConfig",
    "SystemConfig",
    "SystemSettings",
    "TxAllowList",
    "format_key_path",
    "load_system",
    "parse_endpoint",
    "parse_entry",
    "parse_system",
    "run_checks",
]
