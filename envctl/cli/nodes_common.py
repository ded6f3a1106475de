"""What push, status and rollback share on the command line: the inventory and the result table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from envctl.core.delivery import Connect, DeliveryReport, NodeTarget

F = TypeVar("F", bound=Callable[..., Any])


def inventory_option(fn: F) -> F:
    """``-i/--inventory FILE`` (required)."""
    return click.option(
        "-i",
        "--inventory",
        required=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help="TOML inventory of the cluster.",
    )(fn)


def resolve_targets(
    inventory: Path, limit: str | None, accept_new_host_keys: bool
) -> tuple[list[NodeTarget], Connect]:
    """Targets and connector from the inventory (errors name file and key)."""
    from envctl.services.cluster.targets import load_targets

    return load_targets(inventory, limit, accept_new_host_keys)


def short(digest: str | None) -> str:
    """``sha256:0123456789ab`` for tables."""
    return digest[:19] if digest else "-"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def render_delivery(report: DeliveryReport, as_json: bool) -> None:
    """Print the per-node map (table or JSON); exit 1 unless every node succeeded."""
    from envctl.cli.output import render

    render(report.as_json(), ok=report.exit_code == 0, as_json=as_json, show=lambda: _show(report))


def _show(report: DeliveryReport) -> None:
    from rich.table import Table

    from envctl.cli.output import stdout

    table = Table(title=f"{report.operation} {report.env} {short(report.digest)}")
    for col in ("node", "status", "sent", "previous", "reason"):
        table.add_column(col)
    colors = {"ok": "green", "unchanged": "cyan", "skipped": "yellow", "failed": "red"}
    for name, r in sorted(report.nodes.items()):
        table.add_row(
            name,
            f"[{colors[r.status]}]{r.status}",
            _size(r.bytes_sent),
            short(r.previous),
            r.reason or "",
        )
    stdout.print(table)
    stdout.print(f"outcome: {report.outcome}")
