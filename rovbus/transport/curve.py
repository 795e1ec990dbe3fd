"""CURVE encryption and ZAP authentication for a forwarder's outer side.

Key files use pyzmq's certificate format (``zmq.auth.create_certificates``): ``NAME.key``
holds the public key, ``NAME.key_secret`` the public and the secret key (mode 0600). The
system file names them under ``[security.curve]``; ``rovbus keygen`` writes them.

- :func:`server_setup`: what a forwarder applies to its outer sockets (its key pair,
  ``curve_server``).
- :func:`client_setup`: what a client (an operator tool, or a forwarder connecting to the
  outer side of another forwarder) applies before it connects: its key pair and the
  server's public key. ``None`` when the system does not configure CURVE.
- :class:`CurveAuthenticator`: the ZAP handler on the forwarder's event loop; it admits
  the public keys on the allow-list, gives each connection a ``User-Id`` naming its key
  (``client:NAME``, NAME the key file's without ``.key``; :data:`FORWARDER_USER_ID` for
  the server's own key), and logs each refused key once, not once per attempt
  (a refused client reconnects every 100 ms). Handshakes that fail before ZAP has a say
  (a client without CURVE, a client with another server key) it learns from a socket
  monitor on each server socket (:meth:`CurveAuthenticator.watching`); it counts them by
  cause and logs them at a bounded rate.

One server key pair serves every forwarder of a system. A forwarder that connects to
another forwarder's outer side authenticates with the client key pair when the system
file names one, else with the server key pair; the server's own public key is therefore
always admitted (whoever holds the server secret could impersonate the server anyway).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import zmq
import zmq.asyncio
import zmq.auth
import zmq.utils.z85
from zmq.utils.monitor import parse_monitor_message

from rovbus.config import CurveConfig, SystemConfig
from rovbus.errors import ConfigError
from rovbus.ratelimit import RateLimiter
from rovbus.transport.gate import PUB_DOMAIN, GateAuthenticator, PeerGate

__all__ = [
    "CLIENT_USER_ID",
    "FORWARDER_USER_ID",
    "CurveAuthenticator",
    "SocketSetup",
    "allowed_client_keys",
    "client_setup",
    "key_paths",
    "read_public_key",
    "read_secret_keypair",
    "server_setup",
    "write_keypair",
]

log = logging.getLogger(__name__)

SocketSetup = Callable[[zmq.Socket[Any]], None]

_PUBLIC_BANNER = """\
#   ****  Generated on {0} by rovbus keygen  ****
#   ZeroMQ CURVE Public Certificate
#   Exchange securely, or use a secure mechanism to verify the contents
#   of this file after exchange. Store public certificates in your home
#   directory, in the .curve subdirectory.
"""
_SECRET_BANNER = """\
#   ****  Generated on {0} by rovbus keygen  ****
#   ZeroMQ CURVE **Secret** Certificate
#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.
"""


# -- key files ------------------------------------------------------------------------------


def _write_new(path: Path, text: str, mode: int, overwrite: bool) -> None:
    """Create ``path`` with ``mode`` from the start (no window where it is readable)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, mode)
    try:
        os.fchmod(fd, mode)  # an existing file keeps its old mode through O_TRUNC
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def key_paths(directory: Path, name: str) -> tuple[Path, Path]:
    """``DIR/NAME.key`` and ``DIR/NAME.key_secret``; ``ValueError`` unless ``name`` is a
    plain file name (``../x`` or ``a/b`` would put the keys outside ``directory``)."""
    if name in ("", ".", "..") or Path(name).name != name or "\0" in name:
        raise ValueError(
            f"key name {name!r} is not a plain file name; NAME.key and NAME.key_secret "
            "are written in the key directory (--dir)"
        )
    return directory / f"{name}.key", directory / f"{name}.key_secret"


def write_keypair(directory: Path, name: str, *, overwrite: bool = False) -> tuple[Path, Path]:
    """A fresh CURVE key pair as ``DIR/NAME.key`` (0644) and ``DIR/NAME.key_secret`` (0600).

    Raises ``FileExistsError`` rather than replace an existing key unless ``overwrite``,
    ``ValueError`` for a name that is not a plain file name.
    """
    public_path, secret_path = key_paths(directory, name)
    public, secret = zmq.curve_keypair()
    if not overwrite:
        for path in (public_path, secret_path):
            if path.exists():
                raise FileExistsError(f"{path} exists; not replacing a key (use --force)")
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    body = f'metadata\ncurve\n    public-key = "{public.decode()}"\n'
    _write_new(
        secret_path,
        _SECRET_BANNER.format(now) + f'\n{body}    secret-key = "{secret.decode()}"\n',
        0o600,
        overwrite,
    )
    _write_new(public_path, _PUBLIC_BANNER.format(now) + f"\n{body}", 0o644, overwrite)
    return public_path, secret_path


def _bad_key(path: Path, where: str, problem: str) -> ConfigError:
    return ConfigError(str(path), [f"security.curve.{where}: {path}: {problem}"])


def read_public_key(path: Path, where: str = "public key") -> bytes:
    """The z85 public key of a certificate file; ``ConfigError`` naming it otherwise."""
    try:
        public, _ = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise _bad_key(path, where, f"not a CURVE certificate ({exc})") from None
    if public is None or len(public) != 40:
        raise _bad_key(path, where, "no 40-character z85 public-key in it")
    return public


def read_secret_keypair(path: Path, where: str = "secret key") -> tuple[bytes, bytes]:
    """``(public, secret)`` z85 keys of a ``.key_secret`` file; ``ConfigError`` otherwise."""
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise _bad_key(path, where, f"not a CURVE certificate ({exc})") from None
    if public is None or secret is None or len(public) != 40 or len(secret) != 40:
        raise _bad_key(path, where, "expected both a public-key and a secret-key (z85)")
    return public, secret


def _curve(system: SystemConfig) -> CurveConfig | None:
    return system.security.curve if system.security is not None else None


# -- socket setups --------------------------------------------------------------------------


def server_setup(system: SystemConfig) -> SocketSetup | None:
    """Applies the forwarder's server key pair to a socket; ``None`` without CURVE."""
    curve = _curve(system)
    if curve is None:
        return None
    if curve.server_secret_file is None:
        raise ConfigError(
            str(system.source),
            ["security.curve.server_secret_file: a forwarder needs the server's secret key"],
        )
    public, secret = read_secret_keypair(curve.server_secret_file, "server_secret_file")

    def setup(sock: zmq.Socket[Any]) -> None:
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_server = True

    return setup


def client_setup(
    system: SystemConfig,
    *,
    secret_file: Path | None = None,
    server_public_file: Path | None = None,
) -> SocketSetup | None:
    """Applies CURVE client keys to a socket, before it connects; ``None`` without CURVE.

    The client's key pair comes from ``secret_file`` (a flag), else
    ``security.curve.client_secret_file``, else the server key pair (a forwarder talking
    to another forwarder). The server's public key from ``server_public_file``, else
    ``security.curve.server_public_file``. ``ConfigError`` naming the file at fault.
    """
    curve = _curve(system)
    if curve is None and (secret_file is None or server_public_file is None):
        return None
    if curve is not None:
        secret_file = secret_file or curve.client_secret_file or curve.server_secret_file
        server_public_file = server_public_file or curve.server_public_file
    if secret_file is None or server_public_file is None:
        raise ConfigError(
            str(system.source),
            ["security.curve.client_secret_file: CURVE is on and no client key pair is named"],
        )
    public, secret = read_secret_keypair(secret_file, "client_secret_file")
    server = read_public_key(server_public_file, "server_public_file")

    def setup(sock: zmq.Socket[Any]) -> None:
        sock.curve_secretkey = secret
        sock.curve_publickey = public
        sock.curve_serverkey = server

    return setup


#: the ZAP ``User-Id`` of a connection authenticated with the server's own key pair (a
#: forwarder further out); a listed client's is ``CLIENT_USER_ID`` and its key's name
FORWARDER_USER_ID = "forwarder"
CLIENT_USER_ID = "client:"


def allowed_client_keys(system: SystemConfig) -> dict[bytes, str]:
    """The z85 public keys admitted, each with its ZAP ``User-Id``: ``allowed_clients``
    (``client:`` and the key file's name without ``.key``) and the server's own key
    (:data:`FORWARDER_USER_ID`, unless a client lists the same key)."""
    curve = _curve(system)
    if curve is None:
        return {}
    keys = {read_public_key(curve.server_public_file, "server_public_file"): FORWARDER_USER_ID}
    for i, path in enumerate(curve.allowed_clients):
        name = path.name.removesuffix(".key")
        keys[read_public_key(path, f"allowed_clients[{i}]")] = CLIENT_USER_ID + name
    return keys


# -- ZAP --------------------------------------------------------------------------------------


class _AllowList:
    """The credentials provider pyzmq's authenticator calls for each CURVE handshake."""

    def __init__(self, owner: CurveAuthenticator) -> None:
        self.owner = owner

    def callback(self, domain: str, key: bytes) -> bool:
        return self.owner.check(key)


#: failed handshakes by libzmq's protocol error: the counter and what it means
_HANDSHAKE_FAILURES: dict[int, tuple[str, str]] = {
    zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH: ("no_curve", "the client does not use CURVE"),
    zmq.PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC: (
        "wrong_server_key",
        "its HELLO does not decrypt: the client has another server public key",
    ),
}
_OTHER = "other"
#: seconds between two log lines about failed handshakes of one kind
HANDSHAKE_LOG_INTERVAL = 10.0


def _failure(event: int, value: int) -> tuple[str, str]:
    """The counter and the words for a failed handshake's monitor event."""
    if event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL:
        known = _HANDSHAKE_FAILURES.get(value)
        return known or (_OTHER, f"a malformed handshake (ZMTP protocol error {value:#x})")
    return _OTHER, f"the connection failed during the handshake ({os.strerror(value)})"


class CurveAuthenticator(GateAuthenticator):
    """Admits the listed client keys; counts refusals and logs each refused key once;
    counts the failed handshakes of the sockets it watches and logs them at a bounded rate.
    At the forwarder's pub, it first refuses what ``gate`` refuses.

    Runs on the event loop of the context it serves; ``start()`` before the CURVE server
    sockets bind, ``stop()`` before the context terminates.
    """

    def __init__(
        self, context: zmq.Context[Any], allowed: Mapping[bytes, str], what: str, gate: PeerGate
    ) -> None:
        super().__init__(context, gate)
        self.allowed = allowed
        self.what = what
        self.admitted = 0
        self.refused = 0
        self.refused_keys: set[bytes] = set()
        #: handshakes that failed before ZAP: no CURVE, another server key, other
        self.handshake_failures = {kind: 0 for kind, _ in _HANDSHAKE_FAILURES.values()}
        self.handshake_failures[_OTHER] = 0
        self._address = ""
        self._limit = RateLimiter(HANDSHAKE_LOG_INTERVAL)
        self._monitors: list[tuple[zmq.asyncio.Socket, asyncio.Task[None]]] = []
        for domain in ("*", PUB_DOMAIN):  # "*": sockets that set no ZAP domain
            self.configure_curve_callback(domain, _AllowList(self))

    @property
    def rejected(self) -> int:
        """Clients turned away: refused by ZAP or failed in the handshake."""
        return self.refused + sum(self.handshake_failures.values())

    def stats(self) -> dict[str, Any]:
        return {
            "admitted": self.admitted,
            "refused": self.refused,
            "handshake_failures": dict(self.handshake_failures),
        }

    def watching(self, setup: SocketSetup) -> SocketSetup:
        """``setup``, then the socket's failed handshakes counted and logged from then on."""

        def setup_and_watch(sock: zmq.Socket[Any]) -> None:
            setup(sock)
            address = f"inproc://rovbus-curve-monitor-{id(self):x}-{len(self._monitors)}"
            sock.monitor(
                address,
                zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL,
            )
            events = self.context.socket(zmq.PAIR, socket_class=zmq.asyncio.Socket)
            events.linger = 0
            events.connect(address)
            self._monitors.append((events, asyncio.ensure_future(self._count(events))))

        return setup_and_watch

    async def _count(self, events: zmq.asyncio.Socket) -> None:
        while True:
            event = parse_monitor_message(await events.recv_multipart())
            if event["event"] == zmq.EVENT_MONITOR_STOPPED:
                return
            kind, why = _failure(event["event"], event["value"])
            self.handshake_failures[kind] += 1
            self._limit.log(
                log,
                logging.WARNING,
                kind,
                "%s: a CURVE handshake on %s failed: %s (see curve.handshake_failures in stats)",
                self.what,
                event["endpoint"].decode("utf-8", "replace"),
                why,
            )

    def stop(self) -> None:
        for events, task in self._monitors:
            task.cancel()
            events.close()
        self._monitors.clear()
        super().stop()

    async def handle_zap_message(self, msg: list[bytes]) -> None:
        # pyzmq's callback sees the key only; keep the peer's address for the log line
        self._address = msg[3].decode("utf-8", "replace") if len(msg) > 3 else "?"
        await super().handle_zap_message(msg)

    def curve_user_id(self, client_public_key: bytes) -> str:
        """The ``User-Id`` libzmq attaches to the connection's messages (pyzmq calls this
        with the raw key of a client ``check`` admitted): who it is, for the request
        router (``client:NAME``, or :data:`FORWARDER_USER_ID`)."""
        return self.allowed.get(zmq.utils.z85.encode(client_public_key), "")

    def check(self, key: bytes) -> bool:
        if key in self.allowed:
            self.admitted += 1
            return True
        self.refused += 1
        if key not in self.refused_keys:
            if len(self.refused_keys) < 4096:  # bounded: a flood of fresh keys is a counter
                self.refused_keys.add(key)
            log.warning(
                "%s: refused a CURVE client from %s: key %s is not on the allow-list "
                "(logged once per key; see refused in stats)",
                self.what,
                self._address or "?",
                key.decode("ascii", "replace"),
            )
        return False
