"""Each operator command as a real process against a real node process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from rovbus.cli.dump import parse_filters
from rovbus.cli.main import COMMANDS, main
from rovbus.wire.canframe import CanFrame
from rovbus.wire.cantext import parse_candump, parse_cansend
from tests.cli.commands import Bus, G, node_running


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_help_shows_examples(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert "examples:" in capsys.readouterr().out


def test_top_help_is_fast_and_version(tmp_path: Path) -> None:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rovbus", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "examples:" in done.stdout
    heavy = {"zmq", "can", "pydantic", "cantools", "msgpack", "asyncio"}
    imported = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines()}
    assert not heavy & imported, f"rovbus --help imports {heavy & imported}"
    with pytest.raises(SystemExit):
        main(["--version"])


def test_req_ok_error_and_unknown_node(bus: Bus) -> None:
    done = bus.run("req", "alpha", "node_info", *G)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["node"] == "alpha"
    done = bus.run("req", "alpha", "no_such", *G)
    assert done.returncode == 1
    assert json.loads(done.stdout)["status"] == "error"
    assert "UnknownRequest" in done.stderr
    done = bus.run("req", "nobody", "node_info", *G)
    assert done.returncode == 2
    assert "reachable nodes: alpha" in done.stderr
    done = bus.run("req", "alpha", "stats", "{not json", *G)
    assert done.returncode == 2


def test_send_seen_by_sub_in_candump_and_jsonl(bus: Bus) -> None:
    sub = bus.start("sub", "alpha/can/can0/", "--format", "candump", "-n", "3", *G)
    jsonl = bus.start("sub", "alpha/can/can0/1F3", "--format", "jsonl", "--once", *G)
    sent = ["123#DEADBEEF", "1F334455#11.22", "123#R4"]
    done = bus.run("send", "alpha", "can0", *sent, *G)
    assert done.returncode == 0, done.stderr
    code, out, err = sub.finish()
    assert code == 0, err
    frames = [parse_candump(line) for line in out.splitlines()]
    assert [f.arbitration_id for f in frames] == [0x123, 0x1F334455, 0x123]
    assert frames[1].is_extended_id
    assert frames[1].data == b"\x11\x22"
    assert frames[2].is_remote_frame
    assert frames[2].dlc == 4
    code, out, err = jsonl.finish()
    record = json.loads(out)
    assert record["topic"] == "alpha/can/can0/1F334455"
    assert record["content"]["data"] == "1122"
    assert record["content"]["dir"] == "tx"


def test_send_bad_syntax_is_a_usage_error(bus: Bus) -> None:
    done = bus.run("send", "alpha", "can0", "123#XYZ", *G)
    assert done.returncode == 2
    assert "^" in done.stderr


def test_ctl_tx_off_refuses_send_then_tx_on(bus: Bus) -> None:
    assert bus.run("ctl", "alpha", "tx-off", *G).returncode == 0
    try:
        done = bus.run("send", "alpha", "can0", "123#01", *G)
        assert done.returncode == 1
        assert "transmit disabled" in done.stderr
        done = bus.run("ctl", "alpha", "tx-on", *G)  # no reason: refused before sending
        assert done.returncode == 2
        assert "tx-on needs --reason" in done.stderr
        done = bus.run("ctl", "alpha", "tx-on", "--reason", " ", *G)  # the node refuses
        assert done.returncode == 1
        assert "needs a reason" in done.stderr
        assert bus.run("send", "alpha", "can0", "123#01", *G).returncode == 1
    finally:
        done = bus.run("ctl", "alpha", "tx-on", "--reason", "test over", *G)
    assert done.returncode == 0
    assert json.loads(done.stdout)["tx_enabled"] is True
    assert bus.run("ctl", "alpha", "interrupt", "--reason", "x", *G).returncode == 2


def test_dump_filters(bus: Bus) -> None:
    dump = bus.start("dump", "alpha/can0", "123:7FF", "18FF0000:1FFF0000", "-L", "-n", "2", *G)
    bus.run("send", "alpha", "can0", "456#01", "123#02", "124#03", "18FF1234#04", *G)
    code, out, err = dump.finish()
    assert code == 0, err
    assert [line.split()[-1] for line in out.splitlines()] == ["123#02", "18FF1234#04"]


def test_candump_filter_syntax() -> None:
    f = parse_filters(["123:7FF"])
    assert f.passes(parse_cansend("123#00"))
    assert not f.passes(parse_cansend("124#00"))
    assert f.passes(parse_cansend("00000123#00"))  # a mask without the EFF bit: both kinds
    f = parse_filters(["123:C00007FF"])
    assert not f.passes(parse_cansend("00000123#00"))
    f = parse_filters(["200~700"])
    assert f.passes(parse_cansend("123#00"))
    assert not f.passes(parse_cansend("234#00"))
    f = parse_filters(["00000123:1FFFFFFF"])
    assert f.passes(parse_cansend("00000123#00"))
    assert not f.passes(parse_cansend("123#00"))
    err = CanFrame("can0", 0x4, b"\0" * 8, is_error_frame=True)
    assert not parse_filters([]).passes(err)
    assert parse_filters(["#4"]).passes(err)
    f = parse_filters(["100:700", "123:7FF", "j"])
    assert f.passes(parse_cansend("123#00"))
    assert not f.passes(parse_cansend("124#00"))
    with pytest.raises(ValueError, match="bad filter"):
        parse_filters(["12x:7FF"])


def test_nodes_table_and_json(bus: Bus) -> None:
    # --wait is an upper bound: nodes prints as soon as every node's rates are known
    done = bus.run("nodes", "--wait", "5", *G)
    assert done.returncode == 0, done.stderr
    head = done.stdout.splitlines()[0].split()
    assert (head[:3], head[-1]) == (["NODE", "GROUP", "STATE"], "SUBS")
    assert "alpha" in done.stdout
    assert "alive" in done.stdout
    rows = json.loads(bus.run("nodes", "--json", "--wait", "5", *G).stdout)
    assert rows[0]["node"] == "alpha"
    assert rows[0]["subscriptions"] >= 1  # this command's own, at least
    assert rows[0]["over_cap"] == 0
    assert rows[0]["buses"]["can0"]["state"] == "ok"
    assert rows[0]["rx_rate"] is not None


def test_hz_and_bw(bus: Bus) -> None:
    done = bus.run("hz", "alpha/hb", "alpha/status", "--once", "--json", *G)
    assert done.returncode == 0, done.stderr
    rows = {r["topic"]: r for r in map(json.loads, done.stdout.splitlines())}
    assert rows["alpha/hb"]["rate"] > 0  # whatever the machine's load made of every 0.2 s
    assert rows["alpha/hb"]["missed"] == 0
    done = bus.run("bw", "alpha/", "--once", *G)
    assert done.returncode == 0
    assert "alpha/hb" in done.stdout
    assert "B/s" in done.stdout


def test_hz_on_a_batched_bus_adds_the_frame_rate(tmp_path: Path) -> None:
    # batches leave only full (the delay is far longer than the test): 5 frames each
    with node_running(tmp_path, batch="{ max_frames = 5, max_delay_ms = 60000 }") as node:
        hz = node.start("hz", "alpha/can/can0", "--json", "-n", "1", *G)
        frames = [f"{0x100 + i:03X}#{i:02X}" for i in range(20)]
        assert node.run("send", "alpha", "can0", *frames, *G).returncode == 0
        code, out, err = hz.finish()
    assert code == 0, err
    (row,) = map(json.loads, out.splitlines())
    assert row["topic"] == "alpha/can/can0"  # the echo of the 20 frames sent: 4 batches of 5
    assert row["window"] == 4
    assert row["frames_per_s"] == pytest.approx(5 * row["rate"])


def test_sub_timeout_exits_1(bus: Bus) -> None:
    done = bus.run("sub", "alpha/nothing", "--timeout", "0.3", *G)
    assert done.returncode == 1
    assert "timed out" in done.stderr


def test_ctrl_c_exits_130_without_traceback(bus: Bus) -> None:
    sub = bus.start("sub", "alpha/hb", *G)
    code, out, err = sub.interrupt()
    assert code == 130
    assert "Traceback" not in err
    assert '"alpha/hb"' in out  # jsonl on a pipe


def test_pub_to_sub_connect(bus: Bus, tmp_path: Path) -> None:
    from tests.helpers.ports import free_ports

    endpoint = f"tcp://127.0.0.1:{free_ports(1)[0]}"
    sub = bus.start("sub", "demo/", "--connect", endpoint, "--once", "--timeout", "10")
    done = bus.run(
        "pub",
        "--bind",
        endpoint,
        "--rate",
        "20",
        "--count",
        "20",
        "--type",
        "note",
        "demo/note",
        '{"n": 1}',
    )
    assert done.returncode == 0, done.stderr
    code, out, err = sub.finish()
    assert code == 0, err
    record = json.loads(out)
    assert record["type"] == "note"
    assert record["content"] == {"n": 1}


def test_connection_file(bus: Bus) -> None:
    done = bus.run("connection-file", "alpha")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["transport"] == "tcp"
    assert info["shell_port"] > 0
    assert bus.run("connection-file", "nobody").returncode == 2


def test_ctl_shutdown(tmp_path: Path) -> None:
    with node_running(tmp_path, "gamma") as node:
        done = node.run("ctl", "gamma", "shutdown", *G)
        assert done.returncode == 0, done.stderr
        node.proc.wait(10)
        assert node.proc.returncode == 0
        done = node.run("req", "gamma", "node_info", "--timeout", "0.3", "--retries", "1", *G)
        assert done.returncode == 1
        assert "no reply" in done.stderr
