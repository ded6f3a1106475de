"""``envctl status -i INVENTORY [ENV]``: desired vs actual digest per node, and drift."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from envctl.cli.nodes_common import inventory_option, resolve_nodes, short, ssh_pool

if TYPE_CHECKING:
    from envctl.services.deliver.status import StatusReport


@click.command()
@click.argument("env", required=False)
@inventory_option
@click.option("--limit", help="Only these groups / nodes.")
@click.option(
    "--parallel", type=click.IntRange(1, 256), default=16, show_default=True, help="Nodes asked at once."
)
@click.option("--verify", is_flag=True, help="Also rehash every stored blob of each current version.")
@click.option("--accept-new-host-keys", is_flag=True, help="Trust and record unknown host keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON.")
def status(
    env: str | None,
    inventory: Path,
    limit: str | None,
    parallel: int,
    verify: bool,
    accept_new_host_keys: bool,
    as_json: bool,
) -> None:
    """Show each node's environments: desired (last push) vs actual, drift, last change."""
    from envctl.cli.output import render
    from envctl.core.delivery import check_env_name
    from envctl.services.deliver import status as svc

    env_name = check_env_name(env) if env else None
    nodes = resolve_nodes(inventory, limit)
    with ssh_pool(accept_new_host_keys) as pool:
        report = svc.status(nodes, pool, env_name, parallel, verify)
    # drift (or a node that cannot be asked) is the request not met: exit 1
    render(report.as_json(), ok=report.exit_code == 0, as_json=as_json, show=lambda: _show(report))


def _show(report: StatusReport) -> None:
    from rich.table import Table

    from envctl.cli.output import stdout, styled
    from envctl.errors import EnvctlError

    table = Table("node", "env", "desired", "actual", "previous", "changed", "drift")
    for name, node in sorted(report.nodes.items()):
        if isinstance(node, EnvctlError):
            table.add_row(name, "", "", "", "", "", styled((f"unreachable: {node.message}", "red")))
            continue
        for e, s in sorted(node.envs.items()):
            when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(s.changed_at)) if s.changed_at else ""
            table.add_row(
                name,
                e,
                short(s.desired),
                short(s.actual),
                short(s.previous),
                f"{when} {s.changed_by or ''}".strip(),
                styled((s.drift, "red")) if s.drift else styled(("none", "green")),
            )
    stdout.print(table)
