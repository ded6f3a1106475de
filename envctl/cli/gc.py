"""``envctl gc -i INVENTORY``: free what no environment's current or previous version needs."""

from __future__ import annotations

from pathlib import Path

import click

from envctl.cli.nodes_common import FiniteFloat, inventory_option, resolve_nodes, ssh_pool


@click.command()
@inventory_option
@click.option("--limit", help="Only these groups / nodes.")
@click.option(
    "--max-age",
    type=FiniteFloat(0, 100 * 365 * 24),
    default=24.0,
    show_default=True,
    help="Keep unreferenced data younger than this many hours (pushes in flight).",
)
@click.option("--accept-new-host-keys", is_flag=True, help="Trust and record unknown host keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-node result as JSON.")
def gc(inventory: Path, limit: str | None, max_age: float, accept_new_host_keys: bool, as_json: bool) -> None:
    """Delete unreferenced blobs, unpacked trees and stale partial transfers on each node."""
    from envctl.cli.output import render, stdout, styled
    from envctl.services.deliver import gc as svc

    nodes = resolve_nodes(inventory, limit)
    with ssh_pool(accept_new_host_keys) as pool:
        results = svc.gc(nodes, pool, max_age)

    def show() -> None:
        for name, r in sorted(results.items()):
            if isinstance(r, svc.Freed):
                stdout.print(
                    f"{name}: {r.removed_blobs} blobs, {r.freed_bytes / 1e6:.1f} MB,"
                    f" {len(r.removed_trees)} trees removed"
                    + (f", {len(r.in_use_trees)} kept in use" if r.in_use_trees else "")
                )
            else:
                stdout.print(styled(f"{name}: ", ("failed", "red"), f" {r.message}"))

    render(results.as_json("gc"), ok=results.ok, as_json=as_json, show=show)
