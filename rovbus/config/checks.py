"""Whole-file checks: the rules that span more than one value.

Each check takes a validated :class:`SystemConfig` and yields problem lines that start with
the key path they concern (``forwarders.tether.inner: ...``). :func:`run_checks` runs them
all and returns every problem, so an operator fixes a file in one pass.

File checks (key files exist, are regular files, and secrets are not readable by group or
others) touch the disk; ``check_files=False`` skips them, for a machine that does not hold
every key named in the shared file.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from rovbus.config.endpoints import BoundEndpoints, Endpoint
from rovbus.config.problems import format_key_path, problem
from rovbus.config.system import SystemConfig
from rovbus.config.txallow import MAX_EXTENDED_ID, MAX_STANDARD_ID

__all__ = [
    "CHECKS",
    "NAME_MAX",
    "check_buses",
    "check_endpoints",
    "check_forwarder_tree",
    "check_groups",
    "check_key_files",
    "check_names",
    "name_problem",
    "run_checks",
]

Check = Callable[[SystemConfig], Iterator[str]]

#: the longest name of a system, group, node, forwarder or bus. A name becomes a topic
#: level, a file name (a node's connection file NAME.json, its temporary copy, a systemd
#: instance), a folder (the demo's) and a ZeroMQ routing frame (at most 255 bytes); 64
#: leaves room in each and keeps topics far below the subscription prefix limit
NAME_MAX = 64
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_NAME_RULE = "a letter or digit, then letters, digits, '_' or '-' (it becomes a topic level)"


def name_problem(name: str, what: str = "name") -> str | None:
    """What is wrong with ``name`` as a name in the system file (``what``: how the
    problem calls it), or None."""
    if not _NAME.match(name):
        return f"invalid {what}; expected {_NAME_RULE}"
    if len(name) > NAME_MAX:
        return (
            f"{what} of {len(name)} characters is too long; at most {NAME_MAX} (it names "
            "topics, files and routing frames)"
        )
    return None


def check_names(config: SystemConfig) -> Iterator[str]:
    """Names are topic- and file-safe, and nodes and forwarders share one namespace."""
    found = name_problem(config.system.name)
    if found:
        yield problem(["system", "name"], found)
    for table_name, table in (
        ("groups", config.groups),
        ("nodes", config.nodes),
        ("forwarders", config.forwarders),
    ):
        for key in table:
            found = name_problem(key)
            if found:
                yield problem([table_name, key], found)
    for name in config.forwarders:
        if name in config.nodes:
            yield problem(
                ["forwarders", name],
                f'name "{name}" is already used by nodes.{name}; nodes and forwarders share '
                "one namespace because requests are routed by name",
            )


def _all_endpoints(config: SystemConfig) -> Iterator[tuple[list[str | int], Endpoint]]:
    for name, node in config.nodes.items():
        for channel, endpoint in node.endpoints.items():
            yield ["nodes", name, "endpoints", channel], endpoint
    for name, fwd in config.forwarders.items():
        for channel, endpoint in fwd.endpoints.items():
            yield ["forwarders", name, "endpoints", channel], endpoint


def check_endpoints(config: SystemConfig) -> Iterator[str]:
    """No endpoint is used twice; a wildcard host collides with any host on its port."""
    bound: BoundEndpoints[list[str | int]] = BoundEndpoints()
    for loc, endpoint in _all_endpoints(config):
        collision = bound.first_collision(endpoint)
        if collision is not None:
            other, other_loc = collision
            how = "" if endpoint == other else f" (as {other})"
            yield problem(loc, f"{endpoint} is already used by {format_key_path(other_loc)}{how}")
        bound.add(endpoint, loc)


def check_groups(config: SystemConfig) -> Iterator[str]:
    """Every group a node or forwarder names exists; a forwarder joins two groups."""
    known = ", ".join(f'"{g}"' for g in config.groups) or "none (add a [groups.NAME] table)"

    def unknown(group: str) -> str:
        return f'unknown group "{group}"; known groups: {known}'

    for name, node in config.nodes.items():
        if node.group not in config.groups:
            yield problem(["nodes", name, "group"], unknown(node.group))
    for name, fwd in config.forwarders.items():
        if fwd.inner not in config.groups:
            yield problem(["forwarders", name, "inner"], unknown(fwd.inner))
        if fwd.outer not in config.groups:
            yield problem(["forwarders", name, "outer"], unknown(fwd.outer))
        if fwd.inner == fwd.outer:
            yield problem(
                ["forwarders", name, "outer"],
                f'same group as inner ("{fwd.inner}"); a forwarder joins two different groups',
            )


def check_forwarder_tree(config: SystemConfig) -> Iterator[str]:
    """Groups and forwarders form a tree: one way out of each group, and no cycles."""
    way_out: dict[str, str] = {}  # inner group -> forwarder name
    for name, fwd in config.forwarders.items():
        if fwd.inner == fwd.outer:
            continue  # reported by check_groups
        if fwd.inner in way_out:
            yield problem(
                ["forwarders", name, "inner"],
                f'group "{fwd.inner}" is already the inner side of '
                f"forwarders.{way_out[fwd.inner]}; a group has at most one forwarder out",
            )
            continue
        way_out[fwd.inner] = name
    reported: set[frozenset[str]] = set()
    for start in way_out:
        path = [start]
        group = start
        while group in way_out:
            group = config.forwarders[way_out[group]].outer
            if group in path:
                cycle = path[path.index(group) :]
                if frozenset(cycle) not in reported:
                    reported.add(frozenset(cycle))
                    through = [way_out[g] for g in cycle]
                    route = " -> ".join([*cycle, group])
                    yield problem(
                        ["forwarders", through[0]],
                        f"forwarders form a cycle: {route} (through "
                        f"{', '.join('forwarders.' + f for f in through)}); "
                        "groups and forwarders must form a tree",
                    )
                break
            path.append(group)


def check_buses(config: SystemConfig) -> Iterator[str]:
    """Bus names are unique and topic-safe; FD settings agree; filters fit their ID width."""
    for node_name, node in config.nodes.items():
        seen: dict[str, int] = {}
        for index, bus in enumerate(node.buses):
            loc: list[str | int] = ["nodes", node_name, "buses", index]
            found = name_problem(bus.name, "bus name")
            if found:
                yield problem([*loc, "name"], found)
            if bus.name in seen:
                yield problem(
                    [*loc, "name"],
                    f'bus name "{bus.name}" is already used by '
                    f"nodes.{node_name}.buses[{seen[bus.name]}]",
                )
            else:
                seen[bus.name] = index
            if bus.data_bitrate is not None and not bus.fd:
                yield problem(
                    [*loc, "data_bitrate"],
                    "data_bitrate is only for CAN FD; set fd = true or remove it",
                )
            for f_index, flt in enumerate(bus.filters):
                top, width = (
                    (MAX_EXTENDED_ID, "29-bit") if flt.extended else (MAX_STANDARD_ID, "11-bit")
                )
                for key, value in (("id", flt.id), ("mask", flt.mask)):
                    if value > top:
                        yield problem(
                            [*loc, "filters", f_index, key],
                            f"0x{value:X} is out of the {width} range 0x0-0x{top:X}"
                            + ("" if flt.extended else "; set extended = true for 29-bit IDs"),
                        )


def _check_file(loc: list[str | int], path: Path, secret: bool) -> Iterator[str]:
    try:
        info = path.stat()
    except FileNotFoundError:
        yield problem(loc, f"key file {path} does not exist")
        return
    except OSError as exc:
        yield problem(loc, f"cannot check key file {path}: {exc.strerror or exc}")
        return
    if not stat.S_ISREG(info.st_mode):
        yield problem(loc, f"{path} is not a regular file")
        return
    mode = stat.S_IMODE(info.st_mode)
    if secret and mode & 0o077:
        yield problem(
            loc,
            f"secret key file {path} has mode {mode:04o}, readable by group or others; "
            f"fix it with: chmod 600 {path}",
        )
    if not os.access(path, os.R_OK):
        yield problem(loc, f"key file {path} is not readable by this user")


def check_key_files(config: SystemConfig) -> Iterator[str]:
    """Key files exist; secret ones are private to their owner (mode & 0o077 == 0)."""
    security = config.security
    if security is None:
        return
    hmac_loc: list[str | int] = ["security", "key_file"]
    found = list(_check_file(hmac_loc, security.key_file, secret=True))
    yield from found
    if not found:
        try:
            empty = not security.key_file.read_bytes().strip()
        except OSError:
            empty = False
        if empty:
            yield problem(hmac_loc, f"key file {security.key_file} is empty")
    if security.curve is not None:
        for keys, path in security.curve.secret_files():
            yield from _check_file(["security", "curve", *keys], path, secret=True)
        for keys, path in security.curve.public_files():
            yield from _check_file(["security", "curve", *keys], path, secret=False)


def check_device_files(config: SystemConfig) -> Iterator[str]:
    """The log files of replay devices exist (relative paths: from the system file's folder)."""
    for node_name, node in config.nodes.items():
        for index, bus in enumerate(node.buses):
            for d_index, device in enumerate(bus.devices):
                path = getattr(device, "file", None)
                if device.kind == "replay" and path is not None and not path.is_file():
                    yield problem(
                        ["nodes", node_name, "buses", index, "devices", d_index, "file"],
                        f"replay file {path} does not exist",
                    )


#: the checks that need only the parsed file
CHECKS: tuple[Check, ...] = (
    check_names,
    check_endpoints,
    check_groups,
    check_forwarder_tree,
    check_buses,
)


def run_checks(config: SystemConfig, *, check_files: bool = True) -> list[str]:
    """Every problem every check finds, in check order."""
    checks = (*CHECKS, check_key_files, check_device_files) if check_files else CHECKS
    return [found for check in checks for found in check(config)]
