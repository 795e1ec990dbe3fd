#!/usr/bin/env python3
"""Mutation testing of the safety-critical modules with mutmut (docs/reliability.md).

mutmut copies the package into ``mutants/``, plants one small fault at a time in the
files it is told to mutate, and runs against each fault the tests that reach the mutated
function (it records which tests call which function in a first, unmutated run). A mutant
that no test fails on *survives*; docs/reliability.md ("Mutation testing") justifies each
survivor.

Each group below mutates a few files (optionally only some of their functions) and runs
only the in-process tests that cover them: the transmit allow-list is parsed by every
test that loads a system file, so one test selection for every group would run the whole
suite against each of its mutants. mutmut reads one selection per ``pyproject.toml``, so
each group runs in its own directory, ``build/mutation/GROUP/``: links to the sources and
tests, and this project's ``pyproject.toml`` with the group's files and tests added to its
``[tool.mutmut]`` table. A daemon started as a subprocess imports the unmutated package,
so only in-process tests can kill a mutant.

::

    .venv/bin/pip install -e ".[mutation]"
    .venv/bin/python tools/mutation.py                     # every group
    .venv/bin/python tools/mutation.py liveness transmit   # some groups
    .venv/bin/python tools/mutation.py --no-run --show     # the last results, with diffs
    .venv/bin/python tools/mutation.py --again transmit    # its survivors again, after new tests

It prints a table per group (killed, survived, timed out, no test reaches it) and names
every mutant that was not killed.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "build" / "mutation"
#: what a group's directory links to
LINKS = ("rovbus", "tests", "tools", "config")


@dataclass(frozen=True)
class Group:
    #: files to mutate
    files: tuple[str, ...]
    #: the in-process tests run against the mutants
    tests: tuple[str, ...]
    #: mutmut's names of the functions to run (MODULE.x_FUNCTION, MODULE.xǁCLASSǁMETHOD);
    #: empty: every function of ``files``
    functions: tuple[str, ...] = ()

    def patterns(self) -> tuple[str, ...]:
        modules = (f.removesuffix(".py").replace("/", ".") for f in self.files)
        return tuple(f"{f}__mutmut_*" for f in self.functions) or tuple(f"{m}.*" for m in modules)


GROUPS: dict[str, Group] = {
    # the transmit allow-list: parsing entries, merging them per format, the check
    "txallow": Group(("rovbus/config/txallow.py",), ("tests/config", "tests/can")),
    # a frame's refusal, the transmit queue, and the port's gate: send, tx off and on,
    # a failure dropping the queue, a reopen keeping transmit off, closing
    "transmit": Group(
        ("rovbus/can/transmit.py", "rovbus/can/port.py"),
        ("tests/can",),
        (
            "rovbus.can.transmit.*",
            *(
                f"rovbus.can.port.xǁCanPortǁ{method}"
                for method in (
                    "send",
                    "disable_tx",
                    "enable_tx",
                    "drop_queued",
                    "_go_live",
                    "_on_tx_error",
                    "_on_fail",
                    "_close",
                )
            ),
        ),
    ),
    # tx_off / tx_on at a node (control and console): the reason tx on needs, every bus
    # switched, who asked published
    "txswitch": Group(
        ("rovbus/node/requests.py", "rovbus/node/daemon.py", "rovbus/node/console.py"),
        ("tests/node", "tests/reliability/test_transmit_guard.py"),
        (
            "rovbus.node.requests.x_tx_reason",
            "rovbus.node.requests.x_tx_off_reason",
            "rovbus.node.daemon.xǁNodeDaemonǁset_tx",
            "rovbus.node.console.x__tx",
        ),
    ),
    # heartbeats to alive / late / dead / restarted, and the missed count
    "liveness": Group(("rovbus/transport/liveness.py",), ("tests/transport", "tests/client")),
    # HMAC signing, start keys, the replay guard, and the codec's verify path
    "signing": Group(
        ("rovbus/wire/signing.py", "rovbus/wire/codec.py"),
        ("tests/wire", "tests/transport"),
        (
            "rovbus.wire.signing.*",
            *(
                f"rovbus.wire.codec.xǁCodecǁ{method}"
                for method in ("__init__", "for_start", "encode", "signature_holds", "decode")
            ),
        ),
    ),
    # requests by node name across a forwarder, and their replies back (tests/forwarder
    # runs forwarders as processes: these two files run them in the test process)
    "routing": Group(
        ("rovbus/forwarder/routing.py",),
        ("tests/reliability/test_routing.py", "tests/reliability/test_shutdown.py"),
    ),
}

#: mutmut's exit codes (mutmut/stats.py) folded into the columns of the report
STATUS: dict[int | None, str] = {1: "killed", 3: "killed", 0: "survived", 36: "timeout"}
STATUS |= {code: "timeout" for code in (-24, 24, 152, 255)}
STATUS |= {5: "no tests", 33: "no tests", None: "not run"}
COLUMNS = ("killed", "survived", "timeout", "no tests", "not run", "other")


def prepare(name: str, group: Group) -> None:
    """The group's directory, afresh: links to the sources and tests, and a pyproject.toml
    whose ``[tool.mutmut]`` names the group's files and tests. (mutmut reuses what it finds
    in ``mutants/`` by file times, which a changed configuration or an interrupted run
    leaves wrong; every mutant named is run again anyway.)"""
    work = WORK / name
    work.mkdir(parents=True, exist_ok=True)
    for link in LINKS:
        if not (work / link).is_symlink():
            (work / link).symlink_to(ROOT / link)
    header = "[tool.mutmut]\n"
    text = (ROOT / "pyproject.toml").read_text()
    if header not in text:
        raise SystemExit("pyproject.toml has no [tool.mutmut] table")
    added = (
        f"only_mutate = {json.dumps(list(group.files))}\n"
        f"pytest_add_cli_args_test_selection = {json.dumps(list(group.tests))}\n"
    )
    text = text.replace(header, header + added, 1)
    shutil.rmtree(work / "mutants", ignore_errors=True)
    (work / "pyproject.toml").write_text(text)


def results(work: Path) -> dict[str, int | None]:
    """Every mutant's last exit code, from mutmut's files in the group's directory."""
    codes: dict[str, int | None] = {}
    for meta in sorted((work / "mutants").rglob("*.py.meta")):
        codes |= json.loads(meta.read_text())["exit_code_by_key"]
    return codes


def killed(code: int | None) -> bool:
    return STATUS.get(code) == "killed"


def caught(code: int | None) -> bool:
    """Killed, or timed out: a mutant that spins is caught as surely as one that fails."""
    return STATUS.get(code) in ("killed", "timeout")


def members(codes: dict[str, int | None], patterns: tuple[str, ...]) -> list[str]:
    return sorted(
        (name for name in codes if any(fnmatch.fnmatchcase(name, p) for p in patterns)),
        key=lambda name: (name.partition("__mutmut_")[0], int(name.rpartition("_")[2])),
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("groups", nargs="*", help=f"of {', '.join(GROUPS)} (default: all)")
    parser.add_argument("--max-children", type=int, default=2, help="mutants run at once")
    parser.add_argument("--no-run", action="store_true", help="report the last results")
    parser.add_argument(
        "--again",
        action="store_true",
        help="run again only the mutants the last run neither killed nor timed out on "
        "(in mutmut's copy as that run left it: new tests are found and run)",
    )
    parser.add_argument("--show", action="store_true", help="print each survivor's diff")
    args = parser.parse_args()
    names = args.groups or list(GROUPS)
    unknown = [g for g in names if g not in GROUPS]
    if unknown:
        parser.error(f"unknown group {unknown[0]!r}; the groups are {', '.join(GROUPS)}")
    mutmut = [sys.executable, "-m", "mutmut"]
    rows, survivors = [], []
    for name in names:
        group = GROUPS[name]
        work = WORK / name
        if not args.no_run:
            if args.again:  # the named mutants only, in mutmut's copy as the last run left it
                if not (work / "mutants").is_dir():
                    parser.error(f"{name} has not been run yet: nothing to run again")
                last = results(work)
                chosen = [m for m in members(last, group.patterns()) if not caught(last[m])]
            else:
                prepare(name, group)
                chosen = list(group.patterns())
            if chosen:
                run = [*mutmut, "run", "--max-children", str(args.max_children), *chosen]
                print(f"== {name}: {' '.join(run[2:])}", file=sys.stderr)
                if subprocess.run(run, cwd=work).returncode != 0:  # its progress: the terminal
                    return 1
        codes = results(work)
        mutants = members(codes, group.patterns())
        counts = Counter(STATUS.get(codes[m], "other") for m in mutants)
        rows.append(f"| {name} | {len(mutants)} | {' | '.join(str(counts[c]) for c in COLUMNS)} |")
        survivors += [(work, m, codes[m]) for m in mutants if not killed(codes[m])]
    print(f"\n| group | mutants | {' | '.join(COLUMNS)} |")
    print(f"|---|---:|{'---:|' * len(COLUMNS)}")
    print("\n".join(rows))
    for work, mutant, code in survivors:
        if args.show:
            subprocess.run([*mutmut, "show", mutant], cwd=work, check=False)
        else:
            print(f"{STATUS.get(code, 'other')}: {mutant}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
