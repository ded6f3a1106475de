"""``envctl rollback ENV -i INVENTORY``: every node back to its previous digest."""

from __future__ import annotations

from pathlib import Path

import click

from envctl.cli.nodes_common import inventory_option, render_delivery, resolve_nodes, ssh_pool


@click.command()
@click.argument("env")
@inventory_option
@click.option("--limit", help="Only these groups / nodes.")
@click.option(
    "--parallel", type=click.IntRange(1, 256), default=8, show_default=True, help="Nodes served at once."
)
@click.option("--accept-new-host-keys", is_flag=True, help="Trust and record unknown host keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-node result as JSON.")
def rollback(
    env: str,
    inventory: Path,
    limit: str | None,
    parallel: int,
    accept_new_host_keys: bool,
    as_json: bool,
) -> None:
    """Switch ENV back to the version it had before the last push, atomically per node."""
    from envctl.core.delivery import check_env_name
    from envctl.services.deliver import push as push_svc
    from envctl.services.deliver import rollback as svc

    name = check_env_name(env)
    nodes = resolve_nodes(inventory, limit)
    with ssh_pool(accept_new_host_keys) as pool:
        report = svc.rollback(name, nodes, pool, parallel, by=push_svc.who())
    render_delivery(report, as_json)
