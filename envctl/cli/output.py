"""Printing: rich for people, stable JSON for CI. Nothing outside envctl/cli prints."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape  # messages quote TOML tables like [nodes.gpu1]

from envctl.errors import EnvctlError

stdout = Console(highlight=False, soft_wrap=True)
stderr = Console(stderr=True, highlight=False, soft_wrap=True)


def print_error(exc: EnvctlError) -> None:
    """One line of error, one line of hint, no traceback."""
    stderr.print(f"[bold red]error:[/] {escape(exc.message)}", markup=True, highlight=False)
    if exc.hint:
        stderr.print(f"[yellow]hint:[/] {escape(exc.hint)}", markup=True, highlight=False)


def emit_json(data: Any) -> None:
    """Print one JSON document on stdout (sorted keys, so CI can diff it)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
