"""What ``rovbus sub`` and ``rovbus hz`` tell the user about messages lost on the way.

The publisher (tests/helpers/numbered.py) numbers its messages per topic as a node does (header
``seq``) and leaves some numbers out, as if a high-water mark on the way had dropped them.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli.commands import Background
from tests.helpers.numbered import NumberedSender


class Command:
    """``rovbus ARGS -v`` without a system file, started once it logs that it listens;
    its stdout read line by line (unbuffered, so no line waits in a buffer unseen)."""

    def __init__(self, tmp_path: Path, *args: str) -> None:
        env = dict(os.environ, ROVBUS_CONFIG=str(tmp_path / "none.toml"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "rovbus", *args, "-v"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.bg = Background(proc)
        self.bg.wait_stderr("listening")
        assert proc.stdout is not None
        self.fd = proc.stdout.fileno()
        self.pending = b""

    def line(self, timeout: float) -> str | None:
        """The next line of stdout, or None if none came within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                chunk = os.read(self.fd, 65536)
                assert chunk, f"stdout closed; pending {self.pending!r}"
                self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return line.decode()

    def lines_until(self, text: str, timeout: float = 15.0) -> list[str]:
        """Lines of stdout up to and including the first that contains ``text``."""
        lines: list[str] = []
        deadline = time.monotonic() + timeout
        while not lines or text not in lines[-1]:
            line = self.line(deadline - time.monotonic())
            assert line is not None, f"no {text!r} on stdout; got {lines}"
            lines.append(line)
        return lines

    def joined(self, sender: NumberedSender, topic: str) -> int:
        """Publish on ``topic`` (seq 1, 2, ...) until a message is printed: the
        subscription reached the publisher. Returns the last seq sent."""
        for seq in range(1, 100):
            sender.send(topic, seq)
            line = self.line(0.1)
            if line is not None:
                assert topic in line
                return seq
            assert self.bg.proc.poll() is None, "the command exited"
        raise AssertionError("the subscription never reached the publisher")

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C; (exit status, stderr)."""
        self.bg.proc.send_signal(signal.SIGINT)
        code, _, err = self.bg.finish()
        return code, err


def test_sub_says_at_exit_how_many_messages_it_missed(
    sender: NumberedSender, tmp_path: Path
) -> None:
    sub = Command(tmp_path, "sub", "demo/", "--connect", sender.endpoint, "--format", "jsonl")
    sub.joined(sender, "demo/join")
    for topic, seq in [("demo/a", 1), ("demo/a", 2), ("demo/a", 5), ("demo/b", 1)]:
        sender.send(topic, seq)
    sender.send("demo/b", 5)
    sender.send("demo/end", 1)
    lines = sub.lines_until("demo/end")
    code, err = sub.interrupt()
    assert code == 130
    records = [json.loads(line) for line in lines if "demo/join" not in line]
    assert [(r["topic"], r["content"]["seq"]) for r in records] == [
        ("demo/a", 1),
        ("demo/a", 2),
        ("demo/a", 5),
        ("demo/b", 1),
        ("demo/b", 5),
        ("demo/end", 1),
    ]
    assert set(records[0]) == {"topic", "type", "date", "from", "content"}  # as before
    summary = "rovbus sub: missed 5 messages on 2 topics, most on demo/b (3)"
    assert summary in err, err


def test_sub_without_a_loss_says_nothing_about_it(sender: NumberedSender, tmp_path: Path) -> None:
    sub = Command(tmp_path, "sub", "demo/", "--connect", sender.endpoint, "--format", "jsonl")
    seq = sub.joined(sender, "demo/a")
    sender.send("demo/a", seq + 1)
    sub.lines_until("demo/a")
    code, err = sub.interrupt()
    assert code == 130
    assert "missed" not in err


@pytest.mark.parametrize("as_json", [False, True])
def test_hz_shows_missed_per_topic(sender: NumberedSender, tmp_path: Path, as_json: bool) -> None:
    args = ["hz", "demo/", "--connect", sender.endpoint, "--period", "0.5", "-n", "2"]
    hz = Command(tmp_path, *args, *(["--json"] if as_json else [])).bg
    seq = 0
    deadline = time.monotonic() + 20
    while hz.proc.poll() is None and time.monotonic() < deadline:
        seq += 1
        sender.send("demo/ok", seq)
        if seq % 5:  # every fifth message of demo/gappy never arrives
            sender.send("demo/gappy", seq)
        time.sleep(0.01)  # a 100 Hz publisher
    code, out, err = hz.finish()
    assert code == 0, err
    if as_json:  # one object per topic and report; the last report's win
        rows = {r["topic"]: r for r in map(json.loads, out.splitlines())}
        assert rows["demo/ok"]["missed"] == 0
        assert rows["demo/gappy"]["missed"] > 0
    else:  # the last report's table: "missed N" ends a line only when N > 0
        lines = {line.split()[0]: line for line in out.strip().split("\n\n")[-1].splitlines()}
        assert "missed" not in lines["demo/ok"]
        assert lines["demo/gappy"].split()[-2] == "missed"
        assert int(lines["demo/gappy"].split()[-1]) > 0
