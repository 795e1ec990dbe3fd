"""Problems in the words of the system file.

pydantic reports errors by ``loc`` tuples and in its own phrasing; an operator edits TOML.
This module turns one into the other: ``('nodes', 'thrusters', 'buses', 0, 'bitrate')``
becomes ``nodes.thrusters.buses[0].bitrate`` and ``int_type`` becomes
``expected an integer, got "fast"``. It imports nothing else from the config layer, so
the models can use :func:`describe` in their own messages.
"""

from __future__ import annotations

import json
import re
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

__all__ = ["describe", "format_key_path", "problem", "validation_problems"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def format_key_path(loc: Sequence[str | int]) -> str:
    """A key path as TOML spells it: ``nodes.a.buses[0].bitrate``; odd keys are quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        key = part if _BARE_KEY.match(part) else json.dumps(part)
        out += f".{key}" if out else key
    return out or "(top level)"


def problem(loc: Sequence[str | int], message: str) -> str:
    """One problem line: ``key.path: message``."""
    return f"{format_key_path(loc)}: {message}"


def describe(value: object) -> str:
    """A value as the system file would show it: ``"fast"``, ``12``, ``true``, a table."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__


_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "list_type": "an array",
    "tuple_type": "an array",
}

_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def _message(error: ErrorDetails, allowed_keys: list[str] | None) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        hint = f"; expected one of: {', '.join(allowed_keys)}" if allowed_keys else ""
        return f"unknown key{hint}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {describe(value)}"
    if kind in _BOUNDS:
        name, words = _BOUNDS[kind]
        return f"expected a number {words} {describe(ctx.get(name))}, got {describe(value)}"
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", '"')
        return f"expected {expected}, got {describe(value)}"
    if kind == "string_too_short":
        return "expected a non-empty string"
    if kind in ("value_error", "assertion_error"):
        return str(ctx.get("error", error["msg"]))
    if kind == "union_tag_invalid":
        expected = str(ctx.get("expected_tags", "")).replace("'", "")
        key = str(ctx.get("discriminator", "kind")).strip("'")
        return f"unknown {key} {describe(ctx.get('tag'))}; expected one of: {expected}"
    if kind == "union_tag_not_found":
        key = str(ctx.get("discriminator", "kind")).strip("'")
        return f"required key {key!r} is missing".replace("'", '"')
    return f"{error['msg']}, got {describe(value)}"


def _unwrap(annotation: Any) -> Any:
    """Strip Annotated and Optional from an annotation."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _allowed_keys(root: type[BaseModel], loc: Sequence[str | int]) -> list[str] | None:
    """The keys the table at ``loc`` (the parent of an unknown key) accepts."""
    current: Any = root
    for part in loc:
        current = _unwrap(current)
        member = _tagged_member(current, part)
        if member is not None:  # a discriminated union's tag: pydantic's loc names it
            current = member
            continue
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = field.annotation
            continue
        origin, args = typing.get_origin(current), typing.get_args(current)
        if origin is dict and len(args) == 2:
            current = args[1]
        elif origin is list and args:
            current = args[0]
        else:
            return None
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return None


def _tagged_member(annotation: Any, tag: str | int) -> Any:
    """The member of a tagged union (``kind = "..."``) whose tag is ``tag``, else None."""
    if typing.get_origin(annotation) not in (typing.Union, types.UnionType):
        return None
    for member in typing.get_args(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            field = member.model_fields.get("kind")
            if field is not None and typing.get_args(field.annotation) == (tag,):
                return member
    return None


def _clean_loc_markers(loc: Iterable[str | int]) -> Iterable[str | int]:
    return (p for p in loc if not (isinstance(p, str) and p.startswith(("[key]", "function-"))))


#: lists of tagged tables (``kind = "..."``): pydantic puts the tag into the error's loc
_TAGGED_LISTS = frozenset({"devices"})


def _clean_loc(loc: Iterable[str | int]) -> list[str | int]:
    # pydantic adds markers for dict keys and function validators, and the tag of a
    # tagged union after its list index; the TOML path has none of them
    out: list[str | int] = []
    parts = list(_clean_loc_markers(loc))
    for i, part in enumerate(parts):
        if i >= 2 and isinstance(parts[i - 1], int) and parts[i - 2] in _TAGGED_LISTS:
            continue  # the tag
        out.append(part)
    return out


def validation_problems(error: ValidationError, root: type[BaseModel]) -> list[str]:
    """Every error of ``error`` as a problem line, in file terms, without duplicates."""
    found: list[str] = []
    for detail in error.errors(include_url=False):
        loc = _clean_loc(detail["loc"])
        raw = list(_clean_loc_markers(detail["loc"]))
        allowed = _allowed_keys(root, raw[:-1]) if detail["type"] == "extra_forbidden" else None
        line = problem(loc, _message(detail, allowed))
        if line not in found:
            found.append(line)
    return found
