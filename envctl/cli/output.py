"""Printing: rich for people, stable JSON for CI. Nothing outside envctl/cli prints."""

from __future__ import annotations

import json
import sys
from functools import cache
from typing import TYPE_CHECKING, Any

from envctl.errors import EnvctlError

if TYPE_CHECKING:
    from rich.console import Console

# rich costs ~40 ms to import: JSON output and plain errors never pay for it.


@cache
def console(err: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=err, highlight=False, soft_wrap=True)


def print_error(exc: EnvctlError) -> None:
    """One line of error, one line of hint, no traceback."""
    sys.stderr.write(f"error: {exc.message}\n")
    if exc.hint:
        sys.stderr.write(f"hint: {exc.hint}\n")
    sys.stderr.flush()


def emit_json(data: Any) -> None:
    """Print one JSON document on stdout (sorted keys, so CI can diff it)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def fail_json(exc: EnvctlError) -> None:
    """With --json, errors are JSON too (on stdout) so CI can parse every outcome."""
    data: dict[str, Any] = {"ok": False, "error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
    explanation = getattr(exc, "explanation", None)
    if explanation is not None and hasattr(explanation, "to_dict"):
        data["explanation"] = explanation.to_dict()
    emit_json(data)
    sys.exit(exc.exit_code)


def __getattr__(name: str) -> Console:
    """`output.stdout` / `output.stderr`: the rich consoles, created on first use."""
    if name == "stdout":
        return console()
    if name == "stderr":
        return console(err=True)
    raise AttributeError(name)
