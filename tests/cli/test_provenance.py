"""Provenance through the commands, against a node process: ``txlog`` and ``dump --origin``
name the user and request behind each transmitted frame, and a ``.rbl`` recording keeps
it (an old one without it still reads)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from rovbus.client.rbl import NativeLogWriter, read_native_log
from rovbus.wire.canframe import CanFrame
from rovbus.wire.codec import Codec
from tests.cli.commands import Bus, G
from tests.helpers.ports import free_ports


def send_as(bus: Bus, user: str, *frames: str) -> str:
    """``rovbus req NODE can_send`` run by ``user``; the msg_id of its request."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rovbus",
            "req",
            bus.node,
            "can_send",
            json.dumps({"bus": "can0", "frames": list(frames)}),
            "--full",
            *G,
        ],
        env={**bus.env(), "LOGNAME": user, "USER": user},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    reply = json.loads(done.stdout)
    assert reply["content"]["sent"] == len(frames)
    msg_id: str = reply["parent_header"]["msg_id"]
    return msg_id


def test_txlog_names_each_client_user_and_request(bus: Bus) -> None:
    first = send_as(bus, "alice", "1A1#01")
    second = send_as(bus, "bob", "1A2#02", "1A3#03")
    done = bus.run("txlog", "alpha", "can0", "-n", "3", "--json", *G)
    assert done.returncode == 0, done.stderr
    origins = [
        (record["id"], record["origin"]["by"], record["origin"]["msg_id"])
        for record in map(json.loads, done.stdout.splitlines())
    ]
    assert origins == [(0x1A1, "alice", first), (0x1A2, "bob", second), (0x1A3, "bob", second)]
    done = bus.run("txlog", "alpha", "-n", "1", *G)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(f" can0 1A3#03  by bob msg {second}\n")


def test_txlog_names_a_bad_bus_and_refuses_a_bad_limit(bus: Bus) -> None:
    done = bus.run("txlog", "alpha", "can7", *G)
    assert done.returncode == 1
    assert "node alpha has no bus 'can7'; it has can0" in done.stderr
    assert bus.run("txlog", "alpha", "-n", "0", *G).returncode == 2


def test_dump_origin_ends_each_transmitted_frame_with_who_caused_it(bus: Bus) -> None:
    dump = bus.start("dump", "alpha/can0", "1B1:7FF", "-x", "--origin", "-n", "1", *G)
    msg_id = send_as(bus, "carol", "1B1#C0FFEE")
    code, out, err = dump.finish()
    assert code == 0, err
    assert out.split() == [
        "TX",
        "can0",
        "1B1",
        "[3]",
        "C0",
        "FF",
        "EE",
        "by",
        "carol",
        "msg",
        msg_id,
    ]
    done = bus.run("dump", "alpha", "-L", "--origin", *G)
    assert done.returncode == 2
    assert "--origin cannot go into candump -L lines" in done.stderr


def test_an_rbl_recording_keeps_the_origin(bus: Bus, tmp_path: Path) -> None:
    path = tmp_path / "tx.rbl"
    record = bus.start("record", str(path), "alpha/can/can0/1C1", "--count", "1", *G)
    msg_id = send_as(bus, "dave", "1C1#01")
    code, _, err = record.finish()
    assert code == 0, err
    header, records = read_native_log(path)
    assert header["version"] == 1
    [(_, frames)] = list(records)
    frame = CanFrame.from_content(Codec().decode(frames).content)
    assert frame.direction == "tx"
    assert frame.origin is not None
    assert (frame.origin.by, frame.origin.msg_id) == ("dave", msg_id)
    assert replayed(bus, path).endswith(f"1C1   [1]  01   by dave msg {msg_id}\n")


def test_an_rbl_of_frames_without_origin_still_reads_and_replays(bus: Bus, tmp_path: Path) -> None:
    """A recording made before origins: its tx frames' content has no ``origin`` key."""
    path = tmp_path / "old.rbl"
    codec = Codec(username="old-node")
    writer = NativeLogWriter(path, system="test", prefixes=[""])
    old = CanFrame("can0", 0x1D1, b"\x01", timestamp=1.0, direction="tx").to_content()
    assert "origin" not in old
    message = codec.message("can_frame", old, identities=[b"alpha/can/can0/1D1"])
    writer.write(codec.encode(message), 1.0)
    writer.close()
    _, records = read_native_log(path)
    [(_, frames)] = list(records)
    frame = CanFrame.from_content(Codec().decode(frames).content)
    assert (frame.arbitration_id, frame.direction, frame.origin) == (0x1D1, "tx", None)
    assert replayed(bus, path).split() == ["TX", "alpha/can0", "1D1", "[1]", "01"]


def replayed(bus: Bus, path: Path) -> str:
    """What ``rovbus dump -x --origin`` prints of the first frame it receives of ``path``
    replayed by ``rovbus play --bind --loop`` (over and over until the dump has it: a
    subscriber joins a PUB when it joins)."""
    [port] = free_ports(1)
    endpoint = f"tcp://127.0.0.1:{port}"
    dump = bus.start("dump", "-x", "--origin", "-n", "1", "--connect", endpoint)
    play = subprocess.Popen(
        [sys.executable, "-m", "rovbus", "play", str(path), "--bind", endpoint, "--loop"],
        env=bus.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        code, out, err = dump.finish()
    finally:  # SIGTERM: a one-message --loop never awaits, so Ctrl-C would not stop it
        play.terminate()
        play.wait(timeout=30)
    assert code == 0, err
    return out
