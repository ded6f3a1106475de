"""``envctl history``: the local ledger of locks, builds, pushes and rollbacks."""

from __future__ import annotations

import click


@click.command()
@click.option("--kind", help="Only events of this kind (lock, build, push, rollback).")
@click.option("--limit", "limit", type=click.IntRange(1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the events as JSON.")
def history(kind: str | None, limit: int, as_json: bool) -> None:
    """Who did what, when, where, and how it went (newest first)."""
    from rich.table import Table

    from envctl.adapters import ledger
    from envctl.cli.json_errors import json_errors
    from envctl.cli.output import emit_json, stdout

    with json_errors(as_json):
        events = ledger.events(kind, limit)
    if as_json:
        emit_json(
            {
                "schema": 1,
                "ledger": str(ledger.ledger_path()),
                "events": [e.as_json() for e in events],
            }
        )
        return
    table = Table("id", "when (UTC)", "who", "kind", "what", "where", "outcome")
    for e in events:
        j = e.as_json()
        where = ", ".join(e.targets[:4]) + (f" +{len(e.targets) - 4}" if len(e.targets) > 4 else "")
        color = {"ok": "green", "partial": "yellow"}.get(e.outcome, "red")
        table.add_row(str(e.id), j["at"], e.who, e.kind, e.subject[:19], where, f"[{color}]{e.outcome}")
    stdout.print(table)
