"""``envctl gc -i INVENTORY``: free what no environment's current or previous version needs."""

from __future__ import annotations

from pathlib import Path

import click

from envctl.cli.nodes_common import inventory_option, resolve_targets


@click.command()
@inventory_option
@click.option("--limit", help="Only these groups / nodes.")
@click.option(
    "--max-age",
    type=click.FloatRange(0),
    default=24.0,
    show_default=True,
    help="Keep unreferenced data younger than this many hours (pushes in flight).",
)
@click.option("--accept-new-host-keys", is_flag=True, help="Trust and record unknown host keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-node result as JSON.")
def gc(inventory: Path, limit: str | None, max_age: float, accept_new_host_keys: bool, as_json: bool) -> None:
    """Delete unreferenced blobs, unpacked trees and stale partial transfers on each node."""
    from envctl.cli.output import render, stdout
    from envctl.services.deliver import gc as svc

    targets, connect = resolve_targets(inventory, limit, accept_new_host_keys)
    results = svc.gc(targets, connect, max_age)

    def show() -> None:
        for name, r in sorted(results.items()):
            if r.error:
                stdout.print(f"{name}: [red]failed[/] {r.error}")
            else:
                stdout.print(
                    f"{name}: {r.removed_blobs} blobs, {r.freed_bytes / 1e6:.1f} MB,"
                    f" {len(r.removed_trees)} trees removed"
                )

    document = {"schema": "envctl.gc/1", "nodes": {n: r.as_json() for n, r in sorted(results.items())}}
    render(document, ok=not any(r.error for r in results.values()), as_json=as_json, show=show)
