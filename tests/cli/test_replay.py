"""Record and play with the real captures in tests/data/can/, and --dbc decoding.

Each capture is played through a node (`play --no-timing`, or at 4x its timing) while
`record` writes a candump log of what the node transmitted; the recorded frames must equal
the originals: IDs, flags, data and order. Two exceptions, said here: sleipner-thruster.log
holds 546 lines with 13 data bytes that no CAN controller can carry, which `play` skips,
so they are left out of the comparison; and the 12,274-frame Garmin TRC is cut to its
first 2,000 frames (the TRC header kept) to keep the suite quick.
"""

from __future__ import annotations

import json
from pathlib import Path

import can
import pytest

from rovbus.wire.canframe import CanFrame
from tests.cli.commands import Bus, G
from tests.helpers.data import CAN_CAPTURES

TRC_SLICE = 2000


def key(msg: can.Message) -> tuple[object, ...]:
    return (
        msg.arbitration_id,
        msg.is_extended_id,
        msg.is_remote_frame,
        msg.is_fd,
        msg.bitrate_switch,
        msg.error_state_indicator,
        bytes(msg.data),
    )


def carried(path: Path) -> list[tuple[object, ...]]:
    """The frames of a capture that a CAN controller can carry."""
    out = []
    for msg in can.LogReader(str(path)):
        try:
            CanFrame.from_can_message(msg, "can0")
        except ValueError:
            continue
        out.append(key(msg))
    return out


def trc_slice(tmp: Path) -> Path:
    lines = (CAN_CAPTURES / "nmea2000-garmin-pcanview.trc").read_text().splitlines(keepends=True)
    head = [line for line in lines if line.startswith(";")]
    body = [line for line in lines if not line.startswith(";")][:TRC_SLICE]
    path = tmp / "garmin-slice.trc"
    path.write_text("".join(head + body))
    return path


@pytest.mark.parametrize(
    ("capture", "timing"),
    [
        ("nmea2000-raymarine-autopilot.log", ["--no-timing"]),
        ("nmea2000-garmin-pcanview.trc", ["--no-timing"]),
        ("sleipner-thruster.log", ["--no-timing"]),
        ("nmea2000-actisense-burst.log", ["--rate", "4"]),
        ("nmea2000-fast-packet.log", ["--rate", "4"]),
    ],
)
def test_play_record_round_trip(bus: Bus, tmp_path: Path, capture: str, timing: list[str]) -> None:
    source = CAN_CAPTURES / capture
    if capture.endswith(".trc"):
        source = trc_slice(tmp_path)
    original = carried(source)
    total = sum(1 for _ in can.LogReader(str(source)))
    if capture.startswith("sleipner"):
        assert total - len(original) == 546  # the 13-byte lines, skipped by play
    recorded_path = tmp_path / "recorded.log"
    record = bus.start(
        "record",
        str(recorded_path),
        "alpha/can/can0/",
        "-n",
        str(len(original)),
        "--timeout",
        "20",
        *G,
    )
    done = bus.run("play", str(source), "--node", "alpha", "--bus", "can0", *timing, *G)
    assert done.returncode == 0, done.stderr
    code, _, err = record.finish()
    assert code == 0, err
    recorded = list(can.LogReader(str(recorded_path)))
    assert [key(m) for m in recorded] == original
    assert all(not m.is_rx for m in recorded)  # the node's own transmissions: dir tx
    assert [m.channel for m in recorded[:1]] == ["can0"]


def test_dbc_decodes_autopilot_heading(bus: Bus, tmp_path: Path) -> None:
    import cantools

    capture = CAN_CAPTURES / "nmea2000-raymarine-autopilot.log"
    head = tmp_path / "autopilot-head.log"
    head.write_text("".join(capture.read_text().splitlines(keepends=True)[:300]))
    heading_frames = [
        m for m in can.LogReader(str(head)) if m.arbitration_id >> 8 & 0x1FFFF == 0x1F112
    ]
    assert heading_frames
    sub = bus.start(
        "sub",
        "alpha/can/can0/09F112",
        "--dbc",
        str(CAN_CAPTURES / "canboat-nmea2000.dbc"),
        "--format",
        "jsonl",
        "-n",
        "3",
        "--timeout",
        "20",
        *G,
    )
    done = bus.run("play", str(head), "--node", "alpha", "--bus", "can0", "--no-timing", *G)
    assert done.returncode == 0, done.stderr
    code, out, err = sub.finish()
    assert code == 0, err
    db = cantools.database.load_file(str(CAN_CAPTURES / "canboat-nmea2000.dbc"), strict=False)
    reference = db.get_message_by_name("PGN_127250_vesselHeading")
    for line, frame in zip(out.splitlines(), heading_frames, strict=False):
        record = json.loads(line)
        (decoded,) = record["decoded"]
        assert decoded["message"] == "PGN_127250_vesselHeading"
        expected = reference.decode(bytes(frame.data), allow_truncated=True)
        assert decoded["signals"]["heading"] == pytest.approx(expected["heading"])
        assert 0 <= decoded["signals"]["heading"] < 6.3  # radians


def test_record_rbl_and_replay(bus: Bus, tmp_path: Path) -> None:
    from rovbus.client import read_native_log
    from tests.helpers.ports import free_ports

    path = tmp_path / "hb.rbl"
    record = bus.start("record", str(path), "alpha/hb", "-n", "3", *G)
    code, _, err = record.finish()
    assert code == 0, err
    header, records = read_native_log(path)
    messages = list(records)
    assert header["prefixes"] == ["alpha/hb"]
    assert len(messages) == 3
    assert all(frames[0] == b"alpha/hb" for _, frames in messages)
    endpoint = f"tcp://127.0.0.1:{free_ports(1)[0]}"
    sub = bus.start("sub", "alpha/hb", "--connect", endpoint, "-n", "3", "--timeout", "10")
    # play gives subscribers --wait seconds to (re)connect to its fresh bind before it sends;
    # the subscriber retries every 0.1 s (libzmq's default), so 2 s leaves room under load
    done = bus.run("play", str(path), "--bind", endpoint, "--no-timing", "--wait", "2")
    assert done.returncode == 0, done.stderr
    code, out, err = sub.finish()
    assert code == 0, err
    seqs = [json.loads(line)["content"]["seq"] for line in out.splitlines()]
    from rovbus.wire.codec import Codec

    assert seqs == [Codec().decode(frames).content["seq"] for _, frames in messages]


@pytest.mark.parametrize("suffix", [".asc", ".blf", ".csv"])
def test_record_python_can_formats(bus: Bus, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"out{suffix}"
    record = bus.start("record", str(path), "alpha/can/can0/", "-n", "2", "--timeout", "10", *G)
    assert bus.run("send", "alpha", "can0", "123#0102", "18FF0001#AABBCC", *G).returncode == 0
    code, _, err = record.finish()
    assert code == 0, err
    got = [(m.arbitration_id, bytes(m.data)) for m in can.LogReader(str(path))]
    assert got == [(0x123, b"\x01\x02"), (0x18FF0001, b"\xaa\xbb\xcc")]


def test_record_rotates_by_size_and_loses_no_frame(bus: Bus, tmp_path: Path) -> None:
    """--max-bytes: python-can's naming for CAN logs (the live file keeps FILE's name, the
    full ones get a timestamp and #NNN), FILE.NNN.rbl for native logs; read in order, the
    files hold every frame once."""
    from rovbus.client import read_native_log

    frames = [f"{0x100 + i:03X}#{i:016X}" for i in range(60)]
    log_path, rbl_path = tmp_path / "rot.log", tmp_path / "rot.rbl"
    prefix = "alpha/can/can0/"
    log_rec = bus.start("record", str(log_path), prefix, "-n", "60", "--max-bytes", "600", *G)
    rbl_rec = bus.start("record", str(rbl_path), prefix, "-n", "60", "--max-bytes", "2000", *G)
    assert bus.run("send", "alpha", "can0", *frames, *G).returncode == 0
    for rec in (log_rec, rbl_rec):
        code, _, err = rec.finish()
        assert code == 0, err
    expected = [(0x100 + i, i.to_bytes(8, "big")) for i in range(60)]

    rolled = sorted(tmp_path.glob("rot_*_#*.log"))
    assert len(rolled) >= 3, "600-byte files should hold about 13 lines each"
    got = []
    for path in [*rolled, log_path]:
        assert path.stat().st_size <= 600 + 60  # a file is closed at the first line past N
        got += [(m.arbitration_id, bytes(m.data)) for m in can.LogReader(str(path))]
    assert got == expected

    parts = [rbl_path, *sorted(tmp_path.glob("rot.[0-9][0-9][0-9].rbl"))]
    assert len(parts) >= 3
    from rovbus.wire.codec import Codec

    decoded = []
    for path in parts:
        header, records = read_native_log(path)
        assert header["prefixes"] == [prefix]
        for _, envelope in records:
            content = Codec().decode(envelope).content
            decoded.append((content["id"], content["data"]))
    assert decoded == expected
