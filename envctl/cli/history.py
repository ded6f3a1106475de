"""``envctl history``: the local ledger of locks, builds, pushes and rollbacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from envctl.adapters.ledger import Event


@click.command()
@click.option(
    "--kind", help="Only events of this kind (lock, build, push, rollback, verify, bootstrap, doctor)."
)
@click.option("--limit", "limit", type=click.IntRange(1, 1_000_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
def history(kind: str | None, limit: int, as_json: bool) -> None:
    """Who did what, when, where, and how it went (newest first)."""
    from envctl.adapters import ledger
    from envctl.cli.output import render

    events = ledger.events(kind, limit)
    document = {
        "schema": "envctl.history/1",
        "ledger": str(ledger.ledger_path()),
        "events": [e.as_json() for e in events],
    }
    render(document, ok=True, as_json=as_json, show=lambda: _show(events))


def _show(events: Sequence[Event]) -> None:
    from rich.table import Table

    from envctl.cli.output import stdout, styled

    table = Table("id", "when (UTC)", "who", "kind", "what", "where", "outcome", "verified")
    for e in events:
        j = e.as_json()
        where = ", ".join(e.targets[:4]) + (f" +{len(e.targets) - 4}" if len(e.targets) > 4 else "")
        color = {"ok": "green", "partial": "yellow"}.get(e.outcome, "red")
        cells = (e.kind, e.subject[:19], where, styled((e.outcome, color)), _verified(e))
        table.add_row(str(e.id), j["at"], e.who, *cells)
    stdout.print(table)


def _verified(event: Event) -> Any:
    """``push --verify`` and ``verify`` events: how many nodes passed, and which did not."""
    from envctl.cli.output import styled

    checks = event.details.get("verify") if event.kind == "push" else event.details
    if event.kind not in ("push", "verify") or not isinstance(checks, dict):
        return ""
    passed, failed = checks.get("passed"), checks.get("failed")
    if not isinstance(passed, list) or not isinstance(failed, list):
        return ""
    total = len(passed) + len(failed)
    if not failed:
        return styled((f"{len(passed)}/{total} passed", "green"))
    names = ", ".join(str(n) for n in failed[:4]) + (f" +{len(failed) - 4}" if len(failed) > 4 else "")
    return styled((f"{len(passed)}/{total} passed, failed: {names}", "red"))
