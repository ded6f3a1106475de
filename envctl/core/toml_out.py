"""envctl's one TOML writer: pylock.toml exports, inventories, sandbox state.

Pure. Built on tomli-w (nested tables, arrays of tables, inline tables in arrays, dates; keys and
strings that are not ASCII are written as UTF-8, quoted where they are not bare keys). TOML has
no null, so ``None`` values are left out, in tables and in the tables inside arrays: a key that
is absent reads as "not set". What ``dumps`` writes, ``tomllib.loads`` reads back unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tomli_w


def _without_none(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_without_none(item) for item in value]
    return value


def dumps(document: Mapping[str, Any]) -> str:
    """Render ``document`` as TOML, leaving out ``None`` values (TOML has no null)."""
    return tomli_w.dumps(_without_none(document))
