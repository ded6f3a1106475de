"""Printing: rich for people, one JSON envelope for CI. Nothing outside envctl/cli prints.

Every command ends in :func:`render`: with ``--json`` it prints the command's document, else it
calls the command's ``show`` for people; either way a document that is not ``ok`` exits 1.
Errors take the other road: the command raises, and ``envctl.cli.main`` reports the error (as
:func:`error_document` with ``--json``) and exits with its code. docs/json.md lists every kind.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Callable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import click

from envctl.errors import EnvctlError, UnsatisfiableError

if TYPE_CHECKING:
    from rich.console import Console

# rich costs ~40 ms to import: JSON output and plain errors never pay for it.

#: ``envctl.<kind>/<version>``: the version changes when a key changes meaning or goes away.
SCHEMA = re.compile(r"^envctl\.[a-z-]+/\d+$")
ERROR_SCHEMA = "envctl.error/1"


class NotOk(Exception):
    """A command's answer was printed but says the request was not met (exit 1)."""

    exit_code = 1


#: the width of output that is not a terminal (a pipe, a file, a CI log) without $COLUMNS
WIDE = 10_000


@cache
def console(err: bool = False) -> Console:
    from rich.console import Console

    # emoji=False: names like ``pkg:six:`` or ``a:cd:b`` are printed as they are, never as emoji
    out = Console(stderr=err, highlight=False, soft_wrap=True, emoji=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = WIDE  # tables keep their natural width rather than fold at rich's 80
    return out


def envelope(document: Mapping[str, Any], ok: bool) -> dict[str, Any]:
    """``document`` with its ``ok``, checked: a ``schema`` of the form ``envctl.<kind>/<n>``."""
    schema = document.get("schema")
    if not isinstance(schema, str) or not SCHEMA.fullmatch(schema):
        raise ValueError(f"a JSON document needs a schema envctl.<kind>/<n>, not {schema!r}")
    if document.get("ok", ok) is not ok:
        raise ValueError(f"{schema}: the document says ok={document['ok']!r}, its command {ok!r}")
    return {**document, "ok": ok}


def render(document: Mapping[str, Any], *, ok: bool, as_json: bool, show: Callable[[], None]) -> None:
    """Print a command's result: its JSON envelope with --json, else ``show()``; exit 1 unless ok."""
    data = envelope(document, ok)
    if as_json:
        _emit_json(data)
    else:
        show()
    if not ok:
        raise NotOk


def error_document(message: str, hint: str | None, exit_code: int, error_class: str) -> dict[str, Any]:
    """The one JSON form of every failure, usage errors included."""
    return {
        "schema": ERROR_SCHEMA,
        "ok": False,
        "error": message,
        "hint": hint,
        "exit_code": exit_code,
        "error_class": error_class,
    }


def report_error(exc: EnvctlError, as_json: bool) -> None:
    """An envctl error as JSON on stdout, or as one line of error and one of hint on stderr."""
    if as_json:
        doc = error_document(exc.message, exc.hint, exc.exit_code, type(exc).__name__)
        _emit_json({**exc.details, **doc})
        return
    if isinstance(exc, UnsatisfiableError):
        _print_conflict(exc)
    sys.stderr.write(f"error: {exc.message}\n")
    if exc.hint:
        sys.stderr.write(f"hint: {exc.hint}\n")
    sys.stderr.flush()


def warn(message: str) -> None:
    """One warning line on stderr, in every output mode (stdout may be a document or TOML)."""
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def report_click_error(exc: click.ClickException | click.exceptions.Abort, as_json: bool) -> int:
    """A usage error (exit 2) or an interruption (exit 130), as JSON or as click shows it."""
    if isinstance(exc, click.exceptions.Abort):
        message, hint, code = "aborted", None, 130
    else:
        ctx = getattr(exc, "ctx", None)
        message, code = exc.format_message(), 2  # usage errors are bad input
        hint = f"see '{ctx.command_path if ctx else 'envctl'} --help'"
    if as_json:
        _emit_json(error_document(message, hint, code, type(exc).__name__))
    elif isinstance(exc, click.ClickException):
        exc.show()
    else:
        click.echo(message, err=True)
    return code


def _print_conflict(exc: UnsatisfiableError) -> None:
    """Why no stack exists, before the one-line error: each conflict with its because-steps,
    then each way out (already solved) and what it solves to. --json carries the same as the
    error document's ``explanation`` (docs/json.md)."""
    err = console(err=True)
    conflicts = getattr(exc.explanation, "conflicts", ())
    for i, c in enumerate(conflicts, 1):
        head = "conflicting requirements"
        if len(conflicts) > 1:
            head += (
                f" ({i} of {len(conflicts)}"
                + ("" if c.independent else ", shares requirements with those above")
                + ")"
            )
        names = "; ".join(f"{r.text} ({r.id})" for r in c.requirements) or "the profile"
        err.print(f"{head}: {names}", highlight=False, markup=False)
        for step in c.because:
            err.print(f"  because {step}", highlight=False, markup=False)
    for way in getattr(exc.explanation, "fixes", ()):
        err.print(f"way out: {way.text}\n  -> {way.outcome}", highlight=False, markup=False)


def _emit_json(data: Any) -> None:
    """Print one JSON document on stdout (sorted keys, so CI can diff it)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def __getattr__(name: str) -> Console:
    """`output.stdout` / `output.stderr`: the rich consoles, created on first use."""
    if name == "stdout":
        return console()
    if name == "stderr":
        return console(err=True)
    raise AttributeError(name)
