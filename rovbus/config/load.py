"""Reading a system file: TOML, then the models, then the whole-file checks.

Both entry points raise one :class:`~rovbus.errors.ConfigError` carrying every problem found,
each naming its key path. A missing or unreadable file and invalid TOML stop early (there
is nothing to validate); otherwise all model errors are collected, and the whole-file
checks still run over every node and forwarder that validated on its own, so one pass
shows the operator everything to fix.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from rovbus.config.checks import run_checks
from rovbus.config.problems import validation_problems
from rovbus.config.system import SystemConfig
from rovbus.errors import ConfigError

__all__ = ["load_system", "parse_system"]

_TOML_WHERE = re.compile(
    r"^(?P<what>.*?)\s*\(at (?P<where>line \d+, column \d+|end of document)\)$"
)
_PER_ENTRY_TABLES = ("nodes", "forwarders")


def load_system(path: str | os.PathLike[str], *, check_files: bool = True) -> SystemConfig:
    """Load and check the system file at ``path``.

    Relative paths inside the file resolve against the file's folder. ``check_files=False``
    skips the key-file checks (existence and permissions), for a machine that does not
    hold every key the shared file names; reading a key later still fails clearly.
    Raises ConfigError listing every problem.
    """
    file = Path(path)
    label = str(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise ConfigError(label, [f"no such file: {file.absolute()}"]) from None
    except IsADirectoryError:
        raise ConfigError(label, [f"{file} is a directory, not a system file"]) from None
    except PermissionError:
        raise ConfigError(label, [f"cannot read {file}: permission denied"]) from None
    except OSError as exc:
        raise ConfigError(label, [f"cannot read {file}: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            label, [f"not UTF-8 text (bad byte at offset {exc.start}); TOML files are UTF-8"]
        ) from None
    config = _parse(text, label, file.absolute().parent, check_files)
    config._source = file.absolute()
    return config


def parse_system(
    text: str,
    source: str = "<string>",
    base_dir: Path | None = None,
    *,
    check_files: bool = True,
) -> SystemConfig:
    """Parse and check a system file held in ``text``.

    ``source`` names it in errors; relative paths resolve against ``base_dir`` (default:
    the current directory). The result's ``source`` is None.
    """
    return _parse(text, source, base_dir if base_dir is not None else Path.cwd(), check_files)


def _toml_problem(exc: tomllib.TOMLDecodeError) -> str:
    message = str(exc)
    match = _TOML_WHERE.match(message)
    if match is None:
        return f"invalid TOML: {message}"
    what = match["what"][:1].lower() + match["what"][1:]
    return f"invalid TOML at {match['where']}: {what}"


def _parse(text: str, source: str, base_dir: Path, check_files: bool) -> SystemConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [_toml_problem(exc)]) from None
    config, problems = _validate(data, base_dir)
    if config is not None:
        problems += run_checks(config, check_files=check_files)
    if problems or config is None:
        raise ConfigError(source, problems)
    return config


def _validate(data: dict[str, Any], base_dir: Path) -> tuple[SystemConfig | None, list[str]]:
    """The model and no problems, or the problems and (if possible) a partial model.

    On errors, the failing ``[nodes.X]`` and ``[forwarders.X]`` entries are dropped and
    the rest validated again, so the whole-file checks can still run over what is sound.
    When an error lies elsewhere (``[system]``, ``[groups]``, ...) there is no model.
    """
    context = {"base_dir": base_dir}
    try:
        return SystemConfig.model_validate(data, context=context), []
    except ValidationError as exc:
        problems = validation_problems(exc, SystemConfig)
        failing: set[tuple[str, str]] = set()
        for error in exc.errors(include_url=False):
            loc = error["loc"]
            if len(loc) < 2 or loc[0] not in _PER_ENTRY_TABLES or not isinstance(loc[1], str):
                return None, problems
            failing.add((str(loc[0]), loc[1]))
    pruned = dict(data)
    for table in _PER_ENTRY_TABLES:
        entries = data.get(table)
        if isinstance(entries, dict):
            pruned[table] = {k: v for k, v in entries.items() if (table, k) not in failing}
    try:
        return SystemConfig.model_validate(pruned, context=context), problems
    except ValidationError:
        return None, problems
