"""The Jupyter connection file of a node.

A node's shell, control, stdin, hb and (JSON) iopub sockets are the five channels of a
Jupyter kernel, so a stock Jupyter client can talk to a node given a connection file::

    jupyter console --existing /run/rovbus/propulsion.json

A Jupyter client derives every channel's address from one ``transport`` and one ``ip``
plus a port per channel (``jupyter_client.connect.ConnectionFileMixin._make_url``):

- tcp: ``tcp://{ip}:{port}``;
- ipc: ``ipc://{ip}-{port}``, that is a path prefix with ``-N`` appended per channel.

So a node gets a connection file only when its five endpoints share one transport and one
host (tcp) or one path prefix (ipc, spelled ``ipc:///run/rovbus/propulsion-1``,
``...-2``, ...). The ``iopub`` port is the node's optional JSON IOPub, never the msgpack
``pub``: a Jupyter client subscribes to everything and would choke on CAN frames.

The file holds the HMAC key of the node's conversations (on a signed system, the key of
the node's current start, never the system key: docs/protocol.md, Signing), so it is
written atomically with mode 0600 from its creation, in a folder made with mode 0700 when
it does not exist yet.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rovbus.config.endpoints import WILDCARD_HOSTS, Endpoint, parse_endpoint

__all__ = [
    "JUPYTER_CHANNELS",
    "connection_info",
    "connection_info_for",
    "default_connection_path",
    "endpoint_port",
    "write_connection_file",
]

#: the node channels a Jupyter client uses, by their connection-file names (``<ch>_port``)
JUPYTER_CHANNELS = ("shell", "iopub", "stdin", "control", "hb")

_IPC_PORT = re.compile(r"^(?P<prefix>/.+)-(?P<port>[0-9]+)$")


def connection_info(
    *,
    ip: str,
    transport: str,
    shell_port: int,
    iopub_port: int,
    stdin_port: int,
    control_port: int,
    hb_port: int,
    key: bytes,
    signature_scheme: str,
    kernel_name: str = "rovbus",
) -> dict[str, Any]:
    """The connection-file dict, with exactly the keys jupyter_client reads.

    ``key`` is the HMAC key as bytes (empty: unsigned messages); it is stored as text.
    ValueError for a transport other than tcp or ipc, a port out of range, or a key that
    is not UTF-8 (Jupyter stores keys as JSON strings).
    """
    if transport not in ("tcp", "ipc"):
        raise ValueError(f"transport {transport!r}: a Jupyter client knows only tcp and ipc")
    if not ip:
        raise ValueError("ip is empty")
    ports = {
        "shell_port": shell_port,
        "iopub_port": iopub_port,
        "stdin_port": stdin_port,
        "control_port": control_port,
        "hb_port": hb_port,
    }
    for name, port in ports.items():
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise ValueError(f"{name} {port!r} is not a port number 1-65535")
    try:
        key_text = key.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(
            "the HMAC key is not UTF-8 text; a Jupyter connection file stores keys as "
            "strings, so use a text key such as a hex token"
        ) from None
    return {
        "transport": transport,
        "ip": ip,
        **ports,
        "key": key_text,
        "signature_scheme": signature_scheme,
        "kernel_name": kernel_name,
    }


def endpoint_port(
    endpoint: str | Endpoint, *, wildcard_host: str = "127.0.0.1"
) -> tuple[str, str, int]:
    """Split an endpoint into the ``(transport, ip, port)`` of a connection file.

    - ``tcp://HOST:PORT`` gives ``("tcp", HOST, PORT)``; a wildcard bind host (``*``,
      ``0.0.0.0``, ``[::]``) cannot be connected to and becomes ``wildcard_host``. An IPv6
      host keeps its brackets, since jupyter_client pastes ``ip`` into ``tcp://ip:port``.
    - ``ipc:///PATH-N`` gives ``("ipc", "/PATH", N)``, Jupyter's ipc convention.

    ValueError for anything else: an ipc path without the ``-N`` suffix, inproc, or a
    string that is not an endpoint.
    """
    parsed = parse_endpoint(endpoint) if isinstance(endpoint, str) else endpoint
    if parsed.transport == "tcp":
        host = wildcard_host if parsed.host in WILDCARD_HOSTS else parsed.host
        return ("tcp", host, parsed.port)
    if parsed.transport == "ipc":
        match = _IPC_PORT.match(parsed.path)
        if match is None or not 1 <= int(match["port"]) <= 65535:
            raise ValueError(
                f"{parsed.url}: a Jupyter client reaches ipc channels as ipc://PREFIX-N, "
                "so an ipc endpoint needs a path ending in -N (N 1-65535), e.g. "
                "ipc:///run/rovbus/propulsion-1"
            )
        return ("ipc", match["prefix"], int(match["port"]))
    raise ValueError(f"{parsed.url}: a Jupyter client cannot reach a {parsed.transport} endpoint")


def connection_info_for(
    endpoints: Mapping[str, str | Endpoint],
    *,
    key: bytes,
    signature_scheme: str,
    kernel_name: str = "rovbus",
    wildcard_host: str = "127.0.0.1",
) -> dict[str, Any]:
    """:func:`connection_info` from a node's endpoints by channel name.

    ``endpoints`` must hold ``shell``, ``iopub`` (the JSON IOPub), ``stdin``, ``control``
    and ``hb``; other keys (``pub``) are ignored. ValueError naming the channels when one
    is missing or when they do not share one transport and host (or ipc prefix), which a
    Jupyter client needs.
    """
    missing = [ch for ch in JUPYTER_CHANNELS if endpoints.get(ch) is None]
    if missing:
        raise ValueError(
            "a Jupyter connection file needs endpoints for "
            + ", ".join(JUPYTER_CHANNELS)
            + "; missing: "
            + ", ".join(missing)
        )
    split = {
        ch: endpoint_port(endpoints[ch], wildcard_host=wildcard_host) for ch in JUPYTER_CHANNELS
    }
    places = {(transport, ip) for transport, ip, _ in split.values()}
    if len(places) != 1:
        where = ", ".join(f"{ch}={endpoints[ch]!s}" for ch in JUPYTER_CHANNELS)
        raise ValueError(
            "a Jupyter client needs every channel on one transport and host; got " + where
        )
    transport, ip = places.pop()
    return connection_info(
        ip=ip,
        transport=transport,
        shell_port=split["shell"][2],
        iopub_port=split["iopub"][2],
        stdin_port=split["stdin"][2],
        control_port=split["control"][2],
        hb_port=split["hb"][2],
        key=key,
        signature_scheme=signature_scheme,
        kernel_name=kernel_name,
    )


def write_connection_file(path: Path, info: Mapping[str, Any]) -> Path:
    """Write ``info`` as JSON to ``path`` atomically, readable by the owner only.

    The data goes to a temporary file in the same folder, created with mode 0600
    (``O_CREAT | O_EXCL``, so the key is never readable by others, whatever the umask),
    flushed to disk and then renamed over ``path``: a reader sees the old file or the new
    one, never half of one. A missing folder is created with mode 0700; an existing one
    keeps its mode, but PermissionError if everyone may write to it without the sticky
    bit. Returns ``path``.
    """
    path = Path(path)
    folder = path.parent
    _make_private_folders(folder)
    mode = folder.stat().st_mode
    if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
        raise PermissionError(
            errno.EACCES,
            "the folder is writable by everyone: anyone could replace the connection file",
            str(folder),
        )
    data = (json.dumps(dict(info), indent=2, sort_keys=True) + "\n").encode("utf-8")
    tmp = folder / f".{path.name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # left over by a crashed writer with our pid
    fd = os.open(tmp, flags, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def _make_private_folders(folder: Path) -> None:
    """Create ``folder`` and its missing parents with mode 0700; existing ones stay as they are."""
    missing: list[Path] = []
    for candidate in (folder, *folder.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        try:
            candidate.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made by someone else meanwhile: not ours to chmod
        candidate.chmod(0o700)  # mkdir's mode is masked by the umask


def default_connection_path(node: str, environ: Mapping[str, str] | None = None) -> Path:
    """Where node ``node`` writes its connection file when the system file names none.

    In order: ``$RUNTIME_DIRECTORY/<node>.json`` (systemd's ``RuntimeDirectory=``; the
    first entry when it lists several), ``$XDG_RUNTIME_DIR/rovbus/<node>.json``, else
    ``/tmp/rovbus-<uid>/<node>.json``. ValueError for a node name that is not a plain
    file name.
    """
    if not node or node in (".", "..") or "/" in node or "\0" in node:
        raise ValueError(f"node name {node!r} cannot name a connection file")
    env = os.environ if environ is None else environ
    runtime_directory = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if runtime_directory:
        return Path(runtime_directory) / f"{node}.json"
    xdg = env.get("XDG_RUNTIME_DIR", "")
    if xdg:
        return Path(xdg) / "rovbus" / f"{node}.json"
    return Path("/tmp") / f"rovbus-{os.getuid()}" / f"{node}.json"
