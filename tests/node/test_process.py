"""The node as a real process: systemd readiness, Jupyter's own client, signals, start-up errors."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from jupyter_client.blocking.client import BlockingKernelClient

from rovbus.wire.canframe import CanFrame
from rovbus.wire.codec import Codec
from rovbus.wire.message import Message
from tests.helpers.daemons import node_process
from tests.helpers.systemfile import node_toml
from tests.helpers.waiting import until


def test_ready_watchdog_sigterm_and_stopping(write_system, tmp_path: Path) -> None:
    config = write_system(node_toml("alpha"))
    with node_process(config, "alpha", tmp_path, watchdog_usec=400_000) as (proc, systemd):
        ready = systemd.wait_for("READY=1")
        assert any(line.startswith("STATUS=alpha") for line in ready.splitlines())
        systemd.wait_for("WATCHDOG=1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        systemd.wait_for("STOPPING=1")
    # the connection file goes away with the node
    assert not (tmp_path / "rovbus" / "alpha.json").exists()


def test_jupyter_client_drives_the_node(write_system, tmp_path: Path) -> None:
    config = write_system(node_toml("alpha", tx_allow='["0x100-0x1FF"]'))
    with node_process(config, "alpha", tmp_path) as (proc, systemd):
        systemd.wait_for("READY=1")
        conn = tmp_path / "rovbus" / "alpha.json"
        assert conn.stat().st_mode & 0o777 == 0o600
        kc = BlockingKernelClient()
        kc.load_connection_file(str(conn))
        heart_failures: list[float] = []
        kc.hb_channel.call_handlers = heart_failures.append  # its "heart failure" hook
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=10)
            info = kc.kernel_info(reply=True, timeout=5)
            assert info["content"]["implementation"] == "rovbus"

            def run(code: str, **kwargs: object) -> tuple[dict, list[dict]]:
                outputs: list[dict] = []
                reply = kc.execute_interactive(
                    code, timeout=10, output_hook=outputs.append, **kwargs
                )
                return reply["content"], outputs

            def text_of(outputs: list[dict]) -> str:
                return "".join(
                    o["content"].get("text", "")
                    + o["content"].get("data", {}).get("text/plain", "")
                    for o in outputs
                )

            content, outputs = run("help")
            assert content["status"] == "ok"
            assert "dump BUS" in text_of(outputs)

            # its heartbeat, a REQ on hb, is echoed: it sends a second ping only after the
            # first came back within its time to dead, else it reports a heart failure
            until(
                lambda: json.loads(text_of(run("stats")[1]))["sockets"]["hb"]["messages_out"] >= 2,
                10,
                "jupyter_client's pings echoed",
            )
            assert not heart_failures

            content, outputs = run("status")
            assert text_of(outputs).startswith("alpha (vehicle): ok")

            content, outputs = run("buses")
            assert "can0: virtual:" in text_of(outputs)

            # python-can's virtual bus is in-process: from outside, the node's own pub
            # stream shows what it put on the wire (frames marked tx).
            sub = _subscribe(config, "alpha/can/")
            try:
                content, outputs = run("send can0 123#CAFE")
                assert "sent 1 frame(s) on can0" in text_of(outputs)
                frame = _next_frame(sub)
                assert (frame.arbitration_id, frame.data, frame.direction) == (
                    0x123,
                    b"\xca\xfe",
                    "tx",
                )
                content, outputs = run("dump can0 5")
                assert text_of(outputs).splitlines()[-1].endswith("can0 123#CAFE")

                content, outputs = run("send can0 300#01")  # outside the allow-list
                assert content["status"] == "error"
                assert "300" in content["evalue"]

                content, outputs = run("stats")
                assert '"tx": 1' in text_of(outputs)

                run("tx off")
                assert run("send can0 123#01")[0]["status"] == "error"
                # tx on needs a reason: asked for on stdin; without stdin it refuses
                content, _ = run("tx on", allow_stdin=False)
                assert content["status"] == "error"
                assert "needs a reason" in content["evalue"]
                content, outputs = run(
                    "tx on", allow_stdin=True, stdin_hook=lambda msg: kc.input("")
                )
                assert "cancelled: transmission not changed" in text_of(outputs)
                assert run("send can0 123#01")[0]["status"] == "error"
                content, outputs = run(
                    "tx on", allow_stdin=True, stdin_hook=lambda msg: kc.input("bench test")
                )
                assert "transmission enabled on every bus of alpha: bench test" in text_of(outputs)
                assert run("send can0 124#02")[0]["status"] == "ok"
                assert _next_frame(sub).arbitration_id == 0x124  # nothing sent while off
            finally:
                sub.close(linger=0)

            content, outputs = run("frobnicate")
            assert content["status"] == "error"
            assert "unknown command" in content["evalue"]

            kc.shutdown()
            assert proc.wait(timeout=5) == 0
        finally:
            kc.stop_channels()


def _subscribe(config: Path, prefix: str) -> zmq.Socket:  # type: ignore[type-arg]
    from rovbus.config import load_system

    sock = zmq.Context.instance().socket(zmq.SUB)
    sock.setsockopt(zmq.SUBSCRIBE, prefix.encode())
    sock.setsockopt(zmq.SUBSCRIBE, b"alpha/hb")
    sock.connect(str(load_system(config).node("alpha").endpoints.pub))
    _next_message(sock, "heartbeat")  # the subscription is in force once one arrives
    return sock


def _next_message(sub: zmq.Socket, msg_type: str) -> Message:  # type: ignore[type-arg]
    deadline = time.monotonic() + 5
    while sub.poll(max(0, int((deadline - time.monotonic()) * 1000))):
        msg = Codec().decode(sub.recv_multipart())
        if msg.msg_type == msg_type:
            return msg
    raise AssertionError(f"no {msg_type} published within 5 s")


def _next_frame(sub: zmq.Socket) -> CanFrame:  # type: ignore[type-arg]
    return CanFrame.from_content(_next_message(sub, "can_frame").content)


def test_port_in_use_exits_2_naming_the_endpoint(write_system, tmp_path: Path) -> None:
    config = write_system(node_toml("alpha"))
    text = config.read_text()
    shell = text.split('shell = "')[1].split('"')[0]
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", int(shell.rsplit(":", 1)[1])))
    blocker.listen()
    try:
        with node_process(config, "alpha", tmp_path) as (proc, systemd):
            _, err = proc.communicate(timeout=15)
            assert proc.returncode == 2
            assert shell in err
            assert "shell" in err
            assert not any("READY=1" in t for t in systemd.received)
    finally:
        blocker.close()


def test_bus_that_cannot_open_exits_2_naming_it(write_system, tmp_path: Path) -> None:
    text = node_toml("alpha").replace('interface = "virtual"', 'interface = "socketcan"')
    text = text.replace('channel = "test-', 'channel = "nosuchcan-')
    config = write_system(text)
    with node_process(config, "alpha", tmp_path) as (proc, _):
        _, err = proc.communicate(timeout=15)
    assert proc.returncode == 2
    assert "can0" in err


def test_unknown_node_is_a_usage_error(write_system, tmp_path: Path) -> None:
    config = write_system(node_toml("alpha"))
    result = subprocess.run(
        [sys.executable, "-m", "rovbus", "node", "--config", str(config), "beta"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "beta" in result.stderr
    assert "alpha" in result.stderr


def test_a_stock_jupyter_client_drives_a_signed_node_with_the_key_of_its_start(
    write_system, tmp_path: Path
) -> None:
    """With [security], alpha's connection file holds the key of alpha's current start,
    not the system key: jupyter_client drives alpha with it (shell, iopub); pointed at beta
    it is refused; once alpha restarted, the same client is refused too, and a client that
    reads the file alpha wrote anew is served (shell, stdin, iopub, control)."""
    key = tmp_path / "hmac.key"
    key.write_text("5eed" * 16 + "\n")
    key.chmod(0o600)
    security = f'[security]\nkey_file = "{key}"\n\n'
    config = write_system(node_toml("alpha"), node_toml("beta"), extra=security)
    conn = tmp_path / "rovbus" / "alpha.json"
    with node_process(config, "beta", tmp_path) as (_, beta_systemd):
        beta_systemd.wait_for("READY=1")
        beta = json.loads((tmp_path / "rovbus" / "beta.json").read_text())
        with node_process(config, "alpha", tmp_path) as (alpha, systemd):
            systemd.wait_for("READY=1")
            first = json.loads(conn.read_text())
            assert first["key"] != key.read_text().strip()
            kc = _kernel_client(first)
            try:
                assert kc.kernel_info(reply=True, timeout=5)["content"]["status"] == "ok"
                outputs: list[dict] = []
                reply = kc.execute_interactive("status", timeout=10, output_hook=outputs.append)
                assert reply["content"]["status"] == "ok"
                assert any("alpha (vehicle): ok" in str(o["content"]) for o in outputs)
                kc.execute_interactive("tx off", timeout=10)
                reply = kc.execute_interactive(  # the node asks on stdin
                    "tx on",
                    timeout=10,
                    allow_stdin=True,
                    stdin_hook=lambda msg: kc.input("y"),
                    output_hook=outputs.append,
                )
                assert reply["content"]["status"] == "ok"
                assert "transmission enabled" in str([o["content"] for o in outputs])
                ports = {k: v for k, v in beta.items() if k.endswith("_port")}
                at_beta = _kernel_client(first | ports)
                try:
                    with pytest.raises(TimeoutError):
                        at_beta.kernel_info(reply=True, timeout=1.5)
                finally:
                    at_beta.stop_channels()
                alpha.send_signal(signal.SIGTERM)
                assert alpha.wait(timeout=10) == 0
                with node_process(config, "alpha", tmp_path) as (restarted, systemd):
                    systemd.wait_for("READY=1")
                    with pytest.raises(TimeoutError):  # reconnected, with the old key
                        kc.kernel_info(reply=True, timeout=1.5)
                    again = _kernel_client(json.loads(conn.read_text()))
                    try:
                        assert again.kernel_info(reply=True, timeout=5)["content"]["status"] == "ok"
                        again.shutdown()  # on control
                        assert restarted.wait(timeout=10) == 0
                    finally:
                        again.stop_channels()
            finally:
                kc.stop_channels()


def _kernel_client(info: dict) -> BlockingKernelClient:  # type: ignore[type-arg]
    kc = BlockingKernelClient()
    kc.load_connection_info(info)
    kc.start_channels()
    return kc


@pytest.fixture(autouse=True)
def _no_leaks() -> None:
    """Processes, not sockets, are what these tests start (overrides the node fixture)."""
