"""``envctl verify -i INVENTORY ENV``: run ENV's smoke check on every node, in the node's runtime."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from envctl.cli.nodes_common import FiniteFloat, inventory_option, resolve_nodes, short, ssh_pool

if TYPE_CHECKING:
    from envctl.core.verification import VerifyReport


@click.command()
@click.argument("env")
@inventory_option
@click.option("--limit", help="Only these groups / nodes (comma separated, hostlists allowed).")
@click.option(
    "--parallel", type=click.IntRange(1, 256), default=8, show_default=True, help="Nodes checked at once."
)
@click.option(
    "--timeout",
    type=FiniteFloat(1, 24 * 3600),
    default=600.0,
    show_default=True,
    help="Seconds one node's check may run before it is killed.",
)
@click.option("--accept-new-host-keys", is_flag=True, help="Trust and record unknown host keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-node result as JSON.")
def verify(
    env: str,
    inventory: Path,
    limit: str | None,
    parallel: int,
    timeout: float,
    accept_new_host_keys: bool,
    as_json: bool,
) -> None:
    """Prove ENV by running it: import every package on each node (a kernel per framework on GPU
    nodes); exit 1 unless every node passed."""
    from envctl.cli.output import render
    from envctl.core.delivery import check_env_name
    from envctl.services.deliver import verify as svc

    name = check_env_name(env)
    nodes = resolve_nodes(inventory, limit)
    with ssh_pool(accept_new_host_keys) as pool:  # GPU facts and checks share each node's connection
        report = svc.verify(name, nodes, pool, parallel=parallel, timeout=timeout)
    render(report.as_json(), ok=report.exit_code == 0, as_json=as_json, show=lambda: _show(report, inventory))


def _show(report: VerifyReport, inventory: Path) -> None:
    from rich.table import Table

    from envctl.cli.output import stdout, styled
    from envctl.core.verification import Verified

    table = Table("node", "result", "digest", "runtime", "packages", "kernels", "seconds", "what failed")
    for name, r in sorted(report.nodes.items()):
        if isinstance(r, Verified):
            kernels = ", ".join(sorted(r.kernels)) or "-"
            cells = (styled(("passed", "green")), short(r.digest), r.runtime, str(r.packages), kernels)
            table.add_row(name, *cells, f"{r.seconds:.1f}", "")
        else:
            d = r.details
            table.add_row(
                name,
                styled(("FAILED", "bold red")),
                short(d.get("digest")),
                str(d.get("runtime") or "-"),
                str(d.get("packages") or "-"),
                ", ".join(sorted(d.get("kernels") or {})) or "-",
                f"{float(d.get('seconds') or 0):.1f}",
                r.message,
            )
    stdout.print(table)
    stdout.print(f"outcome: {report.outcome}")
    for name, error in sorted(report.nodes.failed.items()):
        if error.details.get("digest"):  # it ran, and runs that version now
            stdout.print(
                styled(
                    (f"VERIFY FAILED on {name}", "bold red"),
                    f": roll it back with: envctl rollback {report.env} -i {inventory} --limit {name}",
                )
            )
