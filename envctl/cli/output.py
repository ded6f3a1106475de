"""Printing: rich for people, stable JSON for CI. Nothing outside envctl/cli prints."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

from envctl.errors import EnvctlError

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(exc: EnvctlError) -> None:
    """One line of error, one line of hint, no traceback."""
    stderr.print(f"[bold red]error:[/] {exc.message}", markup=True, highlight=False)
    if exc.hint:
        stderr.print(f"[yellow]hint:[/] {exc.hint}", markup=True, highlight=False)


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
