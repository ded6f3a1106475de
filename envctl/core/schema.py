"""Validation of user and data files in one place: every error names file, key path and expectation.

``Table`` wraps one TOML table. Readers take a key, check its type and convert it; unknown keys are
errors too (a typo like ``pyhton`` must not be silently ignored).
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from envctl.core.shown import shown
from envctl.errors import EnvctlError, InputError

_MISSING = object()


class Table:
    """A TOML table with its origin, for precise errors."""

    def __init__(
        self,
        data: Any,
        path: Path | builtins.str,
        keypath: builtins.str = "",
        error: type[EnvctlError] = InputError,
    ) -> None:
        self.path = str(path)
        self.keypath = keypath
        self.error = error
        if not isinstance(data, dict):
            raise self.fail("", f"expected a table, got {_kind(data)}")
        self.data: dict[builtins.str, Any] = data
        self._seen: set[builtins.str] = set()

    def where(self, key: builtins.str) -> builtins.str:
        full = f"{self.keypath}.{key}" if self.keypath and key else (key or self.keypath)
        # keys come from the user's file: a quoted key may hold a newline, and errors are one line
        full = "".join(c if c.isprintable() else repr(c)[1:-1] for c in full)
        return f"{self.path}: {full}" if full else self.path

    def fail(self, key: builtins.str, what: builtins.str, hint: builtins.str | None = None) -> EnvctlError:
        return self.error(f"{self.where(key)}: {what}", hint=hint)

    def _get(self, key: builtins.str, default: Any) -> Any:
        self._seen.add(key)
        value = self.data.get(key, _MISSING)
        if value is _MISSING:
            if default is _MISSING:
                raise self.fail(key, "missing required key")
            return default
        return value

    def has(self, key: builtins.str) -> bool:
        return key in self.data

    def str(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is not default and not isinstance(value, builtins.str):
            raise self.fail(key, f"expected a string, got {_kind(value)}")
        return value

    def bool(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is not default and not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {_kind(value)}")
        return value

    def int(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is not default and (not isinstance(value, int) or isinstance(value, bool)):
            raise self.fail(key, f"expected an integer, got {_kind(value)}")
        return value

    def strs(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is default:
            return value
        if isinstance(value, builtins.str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, builtins.str) for v in value):
            raise self.fail(key, f"expected a list of strings, got {_kind(value)}")
        return tuple(value)

    def version(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self.str(key, default)
        if value is default:
            return value
        return self.parse_version(key, value)

    def parse_version(self, key: builtins.str, value: builtins.str) -> Version:
        from envctl.core.matrix import Dotted

        try:
            return Dotted(value.strip())
        except InvalidVersion:
            raise self.fail(key, f"expected a version like 12.4, got {shown(value)}") from None

    def versions(self, key: builtins.str, default: Any = _MISSING) -> Any:
        values = self.strs(key, default)
        if values is default:
            return values
        return tuple(self.parse_version(key, v) for v in values)

    def spec(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self.str(key, default)
        if value is default:
            return value
        return self.parse_spec(key, value)

    def parse_spec(self, key: builtins.str, value: builtins.str) -> SpecifierSet:
        from envctl.core.matrix import Spec

        if value.strip() in ("", "*", "any"):
            return Spec()
        try:
            return Spec(value)
        except InvalidSpecifier:
            raise self.fail(
                key, f"expected a version specifier like '>=2.4,<2.6', got {shown(value)}"
            ) from None

    def choice(self, key: builtins.str, choices: tuple[builtins.str, ...], default: Any = _MISSING) -> Any:
        value = self.str(key, default)
        if value is not default and value not in choices:
            raise self.fail(key, f"expected one of {', '.join(choices)}, got {shown(value)}")
        return value

    def table(self, key: builtins.str, default: Any = _MISSING) -> Any:
        value = self._get(key, default)
        if value is default:
            return value
        return Table(value, self.path, self._sub(key), self.error)

    def tables(self, key: builtins.str) -> list[Table]:
        """An array of tables (``[[key]]``); missing means empty."""
        value = self._get(key, [])
        if not isinstance(value, list):
            raise self.fail(key, f"expected an array of tables ([[{key}]]), got {_kind(value)}")
        return [Table(v, self.path, f"{self._sub(key)}[{i}]", self.error) for i, v in enumerate(value)]

    def items(self) -> Iterator[tuple[builtins.str, Any]]:
        """Every key of a free-form table (all count as seen)."""
        for key, value in self.data.items():
            self._seen.add(key)
            yield key, value

    def _sub(self, key: builtins.str) -> builtins.str:
        return f"{self.keypath}.{key}" if self.keypath else key

    def done(self) -> None:
        """Reject keys nobody asked for: they are typos or unsupported settings."""
        unknown = sorted(set(self.data) - self._seen)
        if unknown:
            raise self.fail(
                unknown[0],
                "unknown key",
                hint=f"known keys here: {', '.join(sorted(self._seen)) or '(none)'}",
            )


def _kind(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"string {shown(value)}"
    return f"{type(value).__name__} {shown(value)}"
