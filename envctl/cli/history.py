"""``envctl history``: the local ledger of locks, builds, pushes and rollbacks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from envctl.adapters.ledger import Event


@click.command()
@click.option("--kind", help="Only events of this kind (lock, build, push, rollback, bootstrap).")
@click.option("--limit", "limit", type=click.IntRange(1), default=50, show_default=True)
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

    from envctl.cli.output import stdout

    table = Table("id", "when (UTC)", "who", "kind", "what", "where", "outcome")
    for e in events:
        j = e.as_json()
        where = ", ".join(e.targets[:4]) + (f" +{len(e.targets) - 4}" if len(e.targets) > 4 else "")
        color = {"ok": "green", "partial": "yellow"}.get(e.outcome, "red")
        table.add_row(str(e.id), j["at"], e.who, e.kind, e.subject[:19], where, f"[{color}]{e.outcome}")
    stdout.print(table)
