"""``with json_errors(as_json):`` — with --json, an EnvctlError is reported as JSON (fail_json)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from envctl.cli.output import fail_json
from envctl.errors import EnvctlError


@contextmanager
def json_errors(as_json: bool) -> Iterator[None]:
    """Report envctl errors as a JSON document on stdout when ``as_json``; re-raise otherwise."""
    try:
        yield
    except EnvctlError as exc:
        if as_json:
            fail_json(exc)
        raise
