"""The one exception tree: every error class in rovbus/errors.py, and the docs say so."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import rovbus
from rovbus import errors

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _tree() -> set[str]:
    return {
        name
        for name, cls in vars(errors).items()
        if inspect.isclass(cls) and issubclass(cls, errors.RovbusError)
    }


def test_every_rovbus_error_is_defined_in_errors_py() -> None:
    elsewhere = []
    for info in pkgutil.walk_packages(rovbus.__path__, "rovbus."):
        if info.name.endswith(".__main__"):  # running it is the command
            continue
        module = importlib.import_module(info.name)
        for name, cls in vars(module).items():
            if (
                inspect.isclass(cls)
                and issubclass(cls, errors.RovbusError)
                and cls.__module__ == info.name
                and info.name != "rovbus.errors"
            ):
                elsewhere.append(f"{info.name}.{name}")
    assert elsewhere == []


def test_architecture_md_shows_the_whole_tree() -> None:
    text = (DOCS / "architecture.md").read_text()
    tree = text.split("## Exceptions", 1)[1].split("```", 2)[1]
    shown = set(re.findall(r"^[│├└─ ]*([A-Z]\w+)", tree, re.M))
    assert shown == _tree()


def test_every_ename_in_protocol_md_is_a_class_a_peer_can_get() -> None:
    text = (DOCS / "protocol.md").read_text()
    table = text.split("### Errors", 1)[1].split("\n## ", 1)[0]
    enames = set(re.findall(r"^\| `(\w+)` \|", table, re.M)) - {"ename"}  # the head row
    assert {"CanRefused", "CanFailed"} <= enames
    assert enames - {"ValueError"} <= _tree()
