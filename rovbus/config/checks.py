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

from rovbus.config.endpoints import BoundEndpoints
from rovbus.config.hosts import Table, binds, host_of, placement_problem, reached_at
from rovbus.config.models import ForwarderConfig, NodeConfig
from rovbus.config.problems import format_key_path, problem
from rovbus.config.subscriptions import SubscriptionPlan
from rovbus.config.system import SystemConfig
from rovbus.config.txallow import MAX_EXTENDED_ID, MAX_STANDARD_ID, format_id
from rovbus.errors import ConfigError

__all__ = [
    "CHECKS",
    "NAME_MAX",
    "check_buses",
    "check_endpoints",
    "check_forwarder_tree",
    "check_groups",
    "check_hosts",
    "check_key_files",
    "check_names",
    "check_subscription_caps",
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
        ("hosts", config.hosts),
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


def check_endpoints(config: SystemConfig) -> Iterator[str]:
    """No endpoint is used twice on one host; a wildcard collides with any host on its
    port. Two hosts bind the same port freely (a file without hosts is one computer)."""
    by_host: dict[str, BoundEndpoints[tuple[str | int, ...]]] = {}
    for bind in binds(config):
        bound = by_host.setdefault(bind.host, BoundEndpoints())
        collision = bound.first_collision(bind.endpoint)
        if collision is not None:
            other, other_loc = collision
            how = "" if bind.endpoint == other else f" (as {other})"
            yield problem(
                bind.loc, f"{bind.endpoint} is already used by {format_key_path(other_loc)}{how}"
            )
        bound.add(bind.endpoint, bind.loc)


def check_hosts(config: SystemConfig) -> Iterator[str]:
    """Once the file declares hosts, every node and forwarder names one of them; hostnames
    tell hosts apart; every bind can work on its host (:func:`rovbus.config.hosts.reached_at`);
    a forwarder reaches no ipc or inproc endpoint of another host."""
    hostnames: dict[str, str] = {}
    for name, host in config.hosts.items():
        hostname = host.hostname or name
        if hostname in hostnames:
            yield problem(
                ["hosts", name, "hostname"],
                f'"{hostname}" is already the hostname of hosts.{hostnames[hostname]}; a '
                "daemon tells its host by it (set hostname = ... on one of them)",
            )
        hostnames.setdefault(hostname, name)
    misplaced: set[tuple[str | int, ...]] = set()
    entries: list[tuple[Table, NodeConfig | ForwarderConfig]] = [
        *(("nodes", node) for node in config.nodes.values()),
        *(("forwarders", fwd) for fwd in config.forwarders.values()),
    ]
    for table, entry in entries:
        found = placement_problem(config, table, entry)
        if found is not None:
            misplaced.add((table, entry.name))
            yield found
    unworkable: dict[str, None] = {}  # one line per problem: a host without an address
    for bind in binds(config):
        if bind.loc[:2] in misplaced:
            continue
        try:
            reached_at(config, bind)
        except ConfigError as exc:
            unworkable.update(dict.fromkeys(exc.problems))
        if bind.endpoint.bind_kind == "path" and bind.channel in _FORWARDED:
            fwd = config.forwarder_out_of(bind.group)
            if fwd is not None and host_of(config, fwd) != bind.host:
                yield problem(
                    list(bind.loc),
                    f"{bind.endpoint} reaches only its own computer (host {bind.host}), and "
                    f"forwarders.{fwd.name} connects to it from host {host_of(config, fwd)}; "
                    "use tcp",
                )
    yield from unworkable


#: the channels a forwarder connects to in its inner group (nodes' and forwarders')
_FORWARDED = frozenset({"pub", "shell", "control", "request"})


def check_groups(config: SystemConfig) -> Iterator[str]:
    """Every group a node or forwarder names exists; a forwarder joins two groups."""
    known = ", ".join(f'"{g}"' for g in config.groups) or "none (add a [groups.NAME] table)"

    def unknown(group: str) -> str:
        return f'unknown group "{group}"; known groups: {known}'

    for name, node in config.nodes.items():
        if node.group not in config.groups:
            yield problem(["nodes", name, "group"], unknown(node.group))
    for name, host in config.hosts.items():
        for group in host.addresses:
            if group not in config.groups:
                yield problem(["hosts", name, "addresses", group], unknown(group))
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


def check_helms(config: SystemConfig) -> Iterator[str]:
    """Every failsafe frame is inside its bus's ``tx_allow``, and a helm names some IDs."""
    for node_name, node in config.nodes.items():
        for index, bus in enumerate(node.buses):
            helm = bus.helm
            if helm is None:
                continue
            loc: list[str | int] = ["nodes", node_name, "buses", index, "helm"]
            if not helm.ids:
                yield problem([*loc, "ids"], "names no IDs; a helm gates at least one ID")
            for f_index, frame in enumerate(helm.failsafe):
                if not bus.tx_allow.allows(frame.arbitration_id, extended=frame.extended):
                    kind = "29-bit" if frame.extended else "11-bit"
                    yield problem(
                        [*loc, "failsafe", f_index],
                        f'"{frame.text}": {kind} ID '
                        f"{format_id(frame.arbitration_id, frame.extended)} is not in the "
                        f"tx_allow list of bus {bus.name!r} ({bus.tx_allow}); the node could "
                        "not write it",
                    )


def check_subscription_caps(config: SystemConfig) -> Iterator[str]:
    """A publisher's cap holds what the forwarder out of its group may pass to it, and
    ``max_prefix`` holds the longest topic a node publishes."""
    plan = SubscriptionPlan(config)

    def short(loc: list[str | int], value: int, group: str) -> Iterator[str]:
        fwd = plan.out_of(group)
        if fwd is None or value >= plan.passes(fwd):
            return
        yield problem(
            loc,
            f"{value} cannot hold what forwarders.{fwd.name} may pass to it: "
            f"{plan.passes(fwd)} (its cap {plan.forwarder_cap(fwd)} and its cache's "
            f"{plan.cached(fwd)} topics); raise it, or lower forwarders.{fwd.name}."
            "max_subscriptions",
        )

    for name, node in config.nodes.items():
        if node.max_subscriptions_per_peer is not None:
            loc: list[str | int] = ["nodes", name, "max_subscriptions_per_peer"]
            yield from short(loc, node.max_subscriptions_per_peer, node.group)
    for name, fwd in config.forwarders.items():
        if fwd.max_subscriptions is not None:
            yield from short(
                ["forwarders", name, "max_subscriptions"], fwd.max_subscriptions, fwd.outer
            )
    limit = config.system.max_prefix
    for name, node in config.nodes.items():
        for bus in node.buses:
            longest = f"{name}/can/{bus.name}/1FFFFFFF"  # an extended ID's topic
            if len(longest.encode()) > limit:
                yield problem(
                    ["system", "max_prefix"],
                    f"{limit} is shorter than topic {longest!r} of nodes.{name} "
                    f"({len(longest.encode())} bytes): a client subscribing to it would be "
                    "disconnected",
                )
                return


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
    check_hosts,
    check_forwarder_tree,
    check_buses,
    check_helms,
    check_subscription_caps,
)


def run_checks(config: SystemConfig, *, check_files: bool = True) -> list[str]:
    """Every problem every check finds, in check order."""
    checks = (*CHECKS, check_key_files, check_device_files) if check_files else CHECKS
    return [found for check in checks for found in check(config)]
