"""How a recording ends: a signal closes the file, a kill leaves what reached the disk.

What must hold (issue 11, item 6): SIGTERM and SIGHUP close the file as Ctrl-C does
(the BLF header finalised, exit 0), so nothing recorded before the signal is lost; and
while `record` runs, every frame it received reaches the disk within the flush interval
in whole records, so a kill -9 loses at most that interval and leaves a file that
`can.LogReader` (or the .rbl reader) still reads.

Each test sends a known sequence through a real node process (`rovbus send`) to a real
`rovbus record` process, ending with a mark, and waits until the file on disk holds all of
it: the recorder's own word that it got the sequence, with no clock in the assertion.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import can
import pytest

from rovbus.client import read_native_log
from rovbus.wire.codec import Codec
from tests.cli.commands import Bus, G

PREFIX = "alpha/can/can0/"
#: 100 frames and the mark: about 5 KB of candump text, less than one 8 KB file buffer,
#: and much less than one 128 KB BLF container
SEQUENCE = [(0x100 + i, i.to_bytes(8, "big")) for i in range(100)]
MARK = (0x7FF, b"END")
#: what `play --loop` sends after the sequence in the kill test: 20 frames, 10 ms apart
STREAM = [(0x500 + i, bytes([i]) * 4) for i in range(20)]

Frame = tuple[int, bytes]


def cansend(frame: Frame) -> str:
    return f"{frame[0]:03X}#{frame[1].hex().upper()}"


def frames_in(path: Path) -> list[Frame]:
    """The frames in a recording, read the way a user reads it (raises on a bad file)."""
    if path.suffix == ".rbl":
        _, records = read_native_log(path)
        contents = [Codec().decode(frames).content for _, frames in records]
        return [(c["id"], c["data"]) for c in contents]
    return [(m.arbitration_id, bytes(m.data)) for m in can.LogReader(str(path))]


def wait_on_disk(path: Path, expected: list[Frame], what: str, timeout: float = 20.0) -> None:
    """Read ``path`` every 50 ms until it starts with ``expected``; fail after ``timeout``
    seconds saying what it held."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            held: list[Frame] | str = frames_in(path)
        except Exception as exc:  # not yet created, or cut mid-record: not there yet
            held = repr(exc)
        if held[: len(expected)] == expected:
            return
        if time.monotonic() > deadline:
            seen = held if isinstance(held, str) else f"{len(held)} frame(s), from {held[:3]}"
            raise AssertionError(f"{what} within {timeout} s; {path.name} held {seen}")
        time.sleep(0.05)


def record_sequence(bus: Bus, path: Path) -> subprocess.Popen[str]:
    """Start `record`, send the sequence and the mark, wait until all of it is on disk."""
    recorder = bus.start("record", str(path), PREFIX, *G)
    sent = bus.run("send", "alpha", "can0", *map(cansend, [*SEQUENCE, MARK]), *G)
    assert sent.returncode == 0, sent.stderr
    wait_on_disk(path, [*SEQUENCE, MARK], "the frames sent did not reach the disk while recording")
    return recorder.proc


@pytest.mark.parametrize(
    ("signame", "suffix"),
    [
        ("SIGTERM", ".blf"),
        ("SIGTERM", ".log"),
        ("SIGTERM", ".asc"),
        ("SIGTERM", ".csv"),
        ("SIGTERM", ".trc"),
        ("SIGTERM", ".db"),
        ("SIGTERM", ".rbl"),
        ("SIGHUP", ".blf"),
        ("SIGHUP", ".log"),
    ],
)
def test_a_signal_closes_the_file(bus: Bus, tmp_path: Path, signame: str, suffix: str) -> None:
    path = tmp_path / f"stopped{suffix}"
    recorder = record_sequence(bus, path)
    recorder.send_signal(getattr(signal, signame))
    _, err = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, err
    assert "wrote 101 frame(s)" in err or "wrote 101 message(s)" in err, err
    assert frames_in(path) == [*SEQUENCE, MARK]
    if suffix == ".blf":  # closed, not just flushed: the header counts the frames
        assert can.BLFReader(str(path)).object_count == len(SEQUENCE) + 1


@pytest.mark.parametrize("suffix", [".blf", ".log", ".rbl"])
def test_a_kill_keeps_what_reached_the_disk(bus: Bus, tmp_path: Path, suffix: str) -> None:
    """Killed while frames stream in, the file still reads: it holds the sequence and the
    mark, then the stream in order up to some frame, and nothing else."""
    path = tmp_path / f"killed{suffix}"
    stream = tmp_path / "stream.log"
    stream.write_text(
        "".join(f"({1.0 + i * 0.01:.6f}) can0 {cansend(f)}\n" for i, f in enumerate(STREAM))
    )
    recorder = record_sequence(bus, path)
    play_args = ["play", str(stream), "--loop", "--node", "alpha", "--bus", "can0", *G]
    play = subprocess.Popen(
        [sys.executable, "-m", "rovbus", *play_args],
        env=bus.env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # the stream is reaching the disk: the kill lands while frames arrive
        wait_on_disk(path, [*SEQUENCE, MARK, STREAM[0]], "the stream did not reach the disk")
        recorder.kill()
        recorder.communicate(timeout=30)
    finally:
        play.kill()  # the node is shared: no frame of the stream may reach the next test
        play.communicate(timeout=30)
    got = frames_in(path)
    assert got[: len(SEQUENCE) + 1] == [*SEQUENCE, MARK]
    tail = got[len(SEQUENCE) + 1 :]
    assert tail == [STREAM[i % len(STREAM)] for i in range(len(tail))]


def test_between_syncs_a_megabyte_at_most_waits_in_memory(tmp_path: Path) -> None:
    """However fast frames come, what waits for the next sync stays under LogFile.FULL:
    past it the log goes to the system at a record's end (the file reads meanwhile)."""
    from rovbus.cli.canlog import CanLog
    from rovbus.client.logfile import LogFile

    path = tmp_path / "fast.log"
    log = CanLog(path, max_bytes=None, interval=3600)
    sent = [(i % 0x800, i.to_bytes(8, "big")) for i in range(40_000)]  # about 2 MB of text
    for ident, data in sent:
        log.write(can.Message(timestamp=1.0, arbitration_id=ident, data=data, is_extended_id=False))
    assert log.file is not None
    assert log.file.pending < LogFile.FULL
    on_disk = frames_in(path)
    assert len(on_disk) > 10_000
    assert on_disk == sent[: len(on_disk)]
    log.close()
    assert frames_in(path) == sent
