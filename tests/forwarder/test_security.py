"""Edge security: keygen, CURVE with an allow-list on the outer side, HMAC across it."""

from __future__ import annotations

import asyncio
import re
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
import zmq.auth

from rovbus.cli.keygen import write_hmac_key
from rovbus.cli.main import main
from rovbus.errors import RequestTimeout
from rovbus.transport import Requester
from rovbus.transport.curve import client_setup, write_keypair
from tests.forwarder.systems import Outside, System, system_running
from tests.helpers.data import REPO
from tests.helpers.ports import free_ports
from tests.helpers.systemfile import forwarder_toml, node_toml, system_toml
from tests.helpers.waiting import eventually
from tests.node.running import wait_for


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_keygen_writes_a_pair_and_an_hmac_key_with_private_modes(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    cmd = [sys.executable, "-m", "rovbus", "keygen", "tether", "--dir", str(keys), "--hmac"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    public, secret, hmac = keys / "tether.key", keys / "tether.key_secret", keys / "hmac.key"
    assert (mode(secret), mode(hmac), mode(public)) == (0o600, 0o600, 0o644)
    assert mode(keys) == 0o700
    pub_key, no_secret = zmq.auth.load_certificate(public)
    pair = zmq.auth.load_certificate(secret)
    assert no_secret is None
    assert pair[0] == pub_key
    assert pair[1] is not None
    assert len(pair[1]) == 40
    assert len(hmac.read_text().strip()) == 64
    # never replaces a key silently
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert again.returncode == 1
    assert "exists" in again.stderr
    assert zmq.auth.load_certificate(secret) == pair


def test_keygen_refuses_a_name_that_is_not_a_plain_file_name(tmp_path: Path) -> None:
    keys = tmp_path / "a" / "b" / "keys"
    for name in ("../../escaped", "sub/dir", "..", ""):
        cmd = [sys.executable, "-m", "rovbus", "keygen", name, "--dir", str(keys)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        assert done.returncode == 2, (name, done.stderr)
        assert f"key name {name!r} is not a plain file name" in done.stderr
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    assert not keys.exists()


def curve_security(keys: Path) -> str:
    """``[security]`` with CURVE: server pair ``tether``, client ``operator`` allowed."""
    return f"""
[security]
key_file = "{keys}/hmac.key"
max_age = 30.0
[security.curve]
server_secret_file = "{keys}/tether.key_secret"
server_public_file = "{keys}/tether.key"
allowed_clients = ["{keys}/operator.key"]
client_secret_file = "{keys}/operator.key_secret"
client_public_file = "{keys}/operator.key"
"""


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    tmp = tmp_path_factory.mktemp("secure")
    keys = tmp / "keys"
    keys.mkdir(mode=0o700)
    for name in ("tether", "operator", "intruder"):
        write_keypair(keys, name)
    write_hmac_key(keys / "hmac.key")
    security = curve_security(keys) + "\n[groups.shore]\n"
    path = tmp / "system.toml"
    path.write_text(
        system_toml(
            node_toml("alpha"),
            forwarder_toml("tether"),
            forwarder_toml("gateway", "topside", "shore"),
            interval=0.5,
            extra=security,
        )
    )
    with system_running(path, tmp, ["alpha"], ["tether", "gateway"]) as system:
        yield system


@pytest.fixture
async def operator(secure: System) -> Iterator[Outside]:  # type: ignore[misc]
    client = Outside(secure.config, "tether", setup=client_setup(secure.config))
    yield client
    client.close()


@pytest.fixture
async def intruder(secure: System) -> Iterator[Outside]:  # type: ignore[misc]
    keys = Path(str(secure.config.security.key_file)).parent  # type: ignore[union-attr]
    setup = client_setup(secure.config, secret_file=keys / "intruder.key_secret")
    client = Outside(secure.config, "tether", setup=setup)
    yield client
    client.close()


async def test_a_listed_client_subscribes_and_requests(operator: Outside) -> None:
    sub = operator.subscriber("alpha/hb")
    hb = await wait_for(sub, lambda m: m.msg_type == "heartbeat", timeout=10)
    assert hb.content["node"] == "alpha"
    assert hb.header["username"] == "alpha"  # signed by the node, verified here
    reply = await operator.request("alpha", "node_info_request")
    assert reply.content["status"] == "ok"
    assert reply.content["signed"] is True
    assert (await operator.stats())["curve"]["admitted"] >= 1


async def test_an_unlisted_client_receives_nothing_and_cannot_request(
    intruder: Outside, operator: Outside
) -> None:
    sub = intruder.subscriber("alpha/", "tether/")
    with pytest.raises(TimeoutError):
        await wait_for(sub, lambda m: True, timeout=1.5)
    with pytest.raises(RequestTimeout):
        await intruder.request("alpha", "node_info_request", timeout=1.0)
    assert sub.stats.messages_in == 0
    assert (await operator.stats())["curve"]["refused"] >= 2


async def test_an_unsigned_request_is_dropped_at_the_edge(secure: System) -> None:
    unsigned = Outside(secure.config, "tether", setup=client_setup(secure.config), key=b"")
    try:
        with pytest.raises(RequestTimeout):
            await unsigned.request("alpha", "node_info_request", timeout=1.0)
    finally:
        unsigned.close()
    operator = Outside(secure.config, "tether", setup=client_setup(secure.config))
    try:
        assert (await operator.stats())["requests"]["rejected"] >= 1
    finally:
        operator.close()


async def test_the_shore_reaches_the_vehicle_through_two_curve_edges(secure: System) -> None:
    shore = Outside(secure.config, "gateway", setup=client_setup(secure.config))
    try:
        reply = await shore.request("alpha", "kernel_info_request", channel="control")
        assert reply.content["implementation"] == "rovbus"
        sent = await shore.request(
            "alpha", "can_send_request", {"bus": "can0", "frames": ["1E2#02"]}
        )
        log = await shore.request("alpha", "tx_log_request", {"limit": 1})
        [origin] = [frame["origin"] for frame in log.content["frames"]]
        # each edge names the key it authenticated: the gateway's client, then the tether's
        # (the gateway connects with the client pair the file names, operator)
        assert (origin["key"], origin["msg_id"]) == ("operator", sent.parent_header["msg_id"])
        sub = shore.subscriber("alpha/hb")
        await wait_for(sub, lambda m: m.msg_type == "heartbeat", timeout=10)
    finally:
        shore.close()


async def test_frames_a_curve_client_sends_name_its_authenticated_key(
    operator: Outside,
) -> None:
    """The forwarder names the key it authenticated, whatever the client wrote."""
    sub = operator.subscriber("alpha/hb", "alpha/can/can0/")
    await wait_for(sub, lambda m: m.msg_type == "heartbeat", timeout=10)
    codec = await operator.start_codec("alpha", 10)
    req = Requester(operator.ctx, str(operator.fwd.endpoints.request), codec, setup=operator.setup)
    try:
        sent = []
        for claimed in (None, "admiral"):
            message = codec.message(
                "can_send_request",
                {"bus": "can0", "frames": ["1E1#01"]},
                metadata={} if claimed is None else {"curve_key": claimed},
                identities=(b"alpha", b"shell"),
            )
            reply = await req.request(message, timeout=10)
            assert reply.content["status"] == "ok", reply.content
            sent.append(message.msg_id)
    finally:
        req.close()
    published = [
        await wait_for(sub, lambda m: m.content.get("dir") == "tx", timeout=10) for _ in sent
    ]
    log = await operator.request("alpha", "tx_log_request", {"limit": 2})
    for origins in (
        [m.content["origin"] for m in published],
        [f["origin"] for f in log.content["frames"]],
    ):
        assert [(o["by"], o["key"], o["msg_id"]) for o in origins] == [
            ("tester", "operator", msg_id) for msg_id in sent
        ]


async def test_a_refused_key_is_logged_once(
    secure: System, intruder: Outside, operator: Outside
) -> None:
    before = (await operator.stats())["curve"]["refused"]
    intruder.subscriber("alpha/")  # two sockets, two handshakes, one key
    with pytest.raises(RequestTimeout):
        await intruder.request("alpha", "node_info_request", timeout=0.5)

    async def refused_again() -> bool:
        return bool((await operator.stats())["curve"]["refused"] >= before + 2)

    await eventually(refused_again, what="the intruder to be refused twice")
    proc, _ = secure.procs["tether"]
    proc.send_signal(signal.SIGTERM)
    _, err = await asyncio.to_thread(proc.communicate, None, 10)
    assert proc.returncode == 0
    assert err.count("refused a CURVE client") == 1, err


async def test_failed_curve_handshakes_are_counted_and_logged_at_a_bounded_rate(
    tmp_path: Path,
) -> None:
    """Raw pyzmq clients without CURVE (a DEALER on request, a SUB on pub) and with the
    operator's own admitted key pair but another server key (a DEALER on control) never
    reach ZAP: their handshakes fail. The forwarder counts each by cause in its stats,
    and logs each cause at most once per interval. A client without CURVE tries once;
    it counts as ``no_curve``, or as ``other`` when it hangs up on the server's CURVE
    greeting before the server has read its own (a race in every handshake). One with
    another server key tries again every 100 ms or so."""
    keys = tmp_path / "keys"
    keys.mkdir(mode=0o700)
    for name in ("tether", "operator"):
        write_keypair(keys, name)
    write_hmac_key(keys / "hmac.key")
    path = tmp_path / "system.toml"
    path.write_text(
        system_toml(node_toml("alpha"), forwarder_toml("tether"), extra=curve_security(keys))
    )
    with system_running(path, tmp_path, [], ["tether"]) as system:
        endpoints = system.config.forwarder("tether").endpoints
        raw = zmq.Context()
        operator = Outside(system.config, "tether", setup=client_setup(system.config))
        try:
            plain = raw.socket(zmq.DEALER)
            plain.connect(str(endpoints.request))
            plain.send_multipart([b"alpha", b"shell", b"", b"hello"])
            plain_sub = raw.socket(zmq.SUB)
            plain_sub.subscribe(b"")
            plain_sub.connect(str(endpoints.pub))
            wrong = raw.socket(zmq.DEALER)
            wrong.curve_publickey, wrong.curve_secretkey = zmq.auth.load_certificate(
                keys / "operator.key_secret"
            )
            wrong.curve_serverkey = zmq.curve_keypair()[0]
            wrong.connect(str(endpoints.control))
            wrong.send_multipart([b"", b"hello"])

            seen: list[dict[str, int]] = [{}]

            async def failed() -> dict[str, int] | None:
                seen[0] = (await operator.stats())["curve"]["handshake_failures"]
                no_curve = seen[0]["no_curve"] + seen[0]["other"]
                enough = no_curve >= 2 and seen[0]["wrong_server_key"] >= 3
                return seen[0] if enough else None

            try:
                failures = await eventually(failed, timeout=20, what="the failed handshakes")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; the last counters: {seen[0]}") from None
            curve = (await operator.stats())["curve"]
            assert curve["refused"] == 0  # ZAP never saw them
            assert curve["admitted"] >= 1  # the operator
            assert [s.poll(0) for s in (plain, plain_sub, wrong)] == [0, 0, 0]  # got nothing
        finally:
            raw.destroy(linger=0)
            operator.close()
        proc = system.proc("tether")
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(proc.communicate, None, 10)
    assert proc.returncode == 0, err
    no_curve = err.count("failed: the client does not use CURVE")
    no_curve += err.count("failed: the connection failed during the handshake")
    wrong_key = err.count("failed: its HELLO does not decrypt")
    assert no_curve >= 1, err
    assert 1 <= wrong_key < failures["wrong_server_key"], err


async def test_the_secure_demo_admits_the_operator_and_refuses_others(tmp_path: Path) -> None:
    """config/secure-demo.toml with keys made by the command its header documents.

    The copy sits in tmp_path next to keys/, so its relative key paths resolve there, and
    its ports move to free ones (a running demo or another run may hold 7300-7499)."""
    text = (REPO / "config" / "secure-demo.toml").read_text()
    ports = sorted(set(re.findall(r"127\.0\.0\.1:(\d+)", text)))
    fresh = dict(zip(ports, map(str, free_ports(len(ports))), strict=True))
    text = re.sub(r"127\.0\.0\.1:(\d+)", lambda m: f"127.0.0.1:{fresh[m.group(1)]}", text)
    (tmp_path / "secure-demo.toml").write_text(text)
    for name, extra in (("tether", ["--hmac"]), ("operator", []), ("intruder", [])):
        cmd = ["keygen", name, "--dir", str(tmp_path / "keys"), *extra]
        assert main(cmd) == 0
    path = tmp_path / "secure-demo.toml"
    with system_running(path, tmp_path, [], ["tether"]) as system:
        assert system.config.signing
        assert system.config.curve
        operator = Outside(system.config, "tether", setup=client_setup(system.config))
        setup = client_setup(system.config, secret_file=tmp_path / "keys" / "intruder.key_secret")
        intruder = Outside(system.config, "tether", setup=setup)
        try:
            info = await operator.control("node_info_request")
            assert info.content["curve"] is True
            assert [n["name"] for n in info.content["nodes"]] == [
                "propulsion",
                "navigation",
                "power",
            ]
            with pytest.raises(RequestTimeout):
                await intruder.control("kernel_info_request", timeout=1.0)
        finally:
            operator.close()
            intruder.close()
