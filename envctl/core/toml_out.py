"""A small TOML writer for the documents envctl itself emits (inventories, sandbox state).

Pure. Supports what those documents hold: tables of tables, strings, ints, floats, bools and
lists of scalars. Strings are written as TOML basic strings; JSON's escapes are a subset of TOML's.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _string(text: str) -> str:
    # JSON escapes every control character but DEL, which TOML forbids raw; non-ASCII stays
    # literal because TOML rejects JSON's surrogate-pair escapes
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)  # `$` would accept a trailing newline


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} to TOML")
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def dumps(document: Mapping[str, Any]) -> str:
    """Render ``document`` as TOML: scalars first, then one ``[table]`` per nested mapping."""
    lines: list[str] = []

    def emit(table: Mapping[str, Any], path: tuple[str, ...]) -> None:
        scalars = {k: v for k, v in table.items() if v is not None and not isinstance(v, Mapping)}
        tables = {k: v for k, v in table.items() if isinstance(v, Mapping)}
        if path and (scalars or not tables):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_key(part) for part in path) + "]")
        for key, value in scalars.items():
            lines.append(f"{_key(key)} = {_value(value)}")
        for key, value in tables.items():
            emit(value, (*path, key))

    emit(document, ())
    return "\n".join(lines) + "\n"
