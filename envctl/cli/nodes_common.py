"""What the multi-node commands share on the command line: the inventory, the SSH pool, tables."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from envctl.core.delivery import Delivered, DeliveryReport, NotDelivered
from envctl.core.group import GroupResult
from envctl.core.node import NodeSpec
from envctl.core.shown import shown
from envctl.core.verification import Verified

if TYPE_CHECKING:
    from envctl.adapters.ssh_pool import SSHPool
    from envctl.core.inventory import Inventory

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


class FiniteFloat(click.ParamType):  # type: ignore[type-arg]
    """A number of seconds or hours between ``low`` and ``high``: click's FloatRange lets nan
    through (it compares false with both ends) and inf (a wait or an age without end)."""

    name = "number"

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            self.fail(f"{shown(value)} is not a number", param, ctx)
        if not (math.isfinite(number) and self.low <= number <= self.high):
            self.fail(f"{shown(value)} is not a number from {self.low:g} to {self.high:g}", param, ctx)
        return number


def resolve_nodes(inventory: Path, limit: str | None) -> tuple[NodeSpec, ...]:
    """The nodes ``limit`` selects from the inventory (errors name file and key); SSH options
    envctl cannot honour are warned about on stderr."""
    return load_checked(inventory).select(limit)


def load_checked(inventory: Path) -> Inventory:
    """The inventory, its warnings printed on stderr."""
    from envctl.adapters.inventory_file import load_inventory
    from envctl.cli.output import warn

    inv = load_inventory(inventory)
    for line in inv.warnings:
        warn(line)
    return inv


def ssh_pool(accept_new_host_keys: bool) -> SSHPool:
    """The one connection pool of a command (jump hosts shared); use it as a context manager."""
    from envctl.adapters.ssh_pool import SSHPool

    return SSHPool(accept_new_host_keys=accept_new_host_keys)


def short(digest: str | None) -> str:
    """``sha256:0123456789ab`` for tables."""
    return digest[:19] if digest else "-"


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000  # type: ignore[assignment]
    return str(n)


def render_delivery(report: DeliveryReport, as_json: bool, inventory: Path | None = None) -> None:
    """Print the per-node map (table or JSON); exit 1 unless every node succeeded."""
    from envctl.cli.output import render

    render(report.as_json(), ok=report.exit_code == 0, as_json=as_json, show=lambda: _show(report, inventory))


def show_delivery(report: DeliveryReport, inventory: Path | None = None) -> None:
    """The per-node table of one delivery."""
    _show(report, inventory)


def _show_relay(fanout: Any) -> None:
    from envctl.cli.output import stdout

    held = set(fanout.get("holders", ()))  # roots that held the image: nothing came from here
    edges = [
        f"{node}<-{parent or ('held' if node in held else 'here')}" for node, parent in fanout["tree"].items()
    ]
    more = f" ... ({len(edges)} nodes)" if len(edges) > 24 else ""
    stdout.print(f"tree: {', '.join(edges[:24])}{more}")
    moved = ", ".join(sorted(fanout["reparented"])) or "none"
    stdout.print(
        f"relay: {_size(fanout['bytes_from_sender'])} from here, {_size(fanout['bytes_relayed'])} node to"
        f" node, {'TLS' if fanout['encrypted'] else 'UNENCRYPTED'}; re-parented: {moved}"
        f"; fan-out {fanout.get('relay_fanout')}, seeds {fanout.get('relay_seeds')}"
    )


def _verify_cell(report: DeliveryReport, name: str) -> Any:
    from envctl.cli.output import styled

    check = report.verify.get(name) if report.verify is not None else None
    if check is None:
        return "-"
    if isinstance(check, Verified):
        kernels = f", {len(check.kernels)} kernel(s)" if check.kernels else ""
        return styled((f"passed ({check.packages} packages{kernels}, {check.seconds:.1f} s)", "green"))
    return styled(("FAILED", "bold red"))


def _show(report: DeliveryReport, inventory: Path | None = None) -> None:
    from rich.table import Table

    from envctl.cli.output import stdout, styled

    table = Table(title=f"{report.operation} {report.env} {short(report.digest)}")
    columns = ["node", "status", "sent", "previous", "reason"]
    if report.verify is not None:
        columns.insert(4, "verify")
    for col in columns:
        table.add_column(col)
    colors = {"ok": "green", "unchanged": "cyan", "skipped": "yellow", "failed": "red"}
    for name, r in sorted(report.nodes.items()):
        row: tuple[str, int, str, str]
        if isinstance(r, Delivered):
            row = (r.status, r.bytes_sent, short(r.previous), f"repaired: {r.repaired}" if r.repaired else "")
        else:
            failed = NotDelivered.of(r, report.digest)
            row = (failed.status, failed.bytes_sent, "-", failed.message)
        cells: list[Any] = [name, styled((row[0], colors[row[0]])), _size(row[1]), row[2], row[3]]
        if report.verify is not None:
            cells.insert(4, _verify_cell(report, name))
        table.add_row(*cells)
    stdout.print(table)
    stdout.print(f"outcome: {report.outcome}")
    if report.fanout is not None:
        stdout.print(f"fanout: {report.fanout.get('mode')} ({report.fanout.get('why')})")
        if "tree" in report.fanout:  # relay: envctl.services.deliver.relay_stage
            _show_relay(report.fanout)
    _show_failed_checks(report, inventory)
    for name, entry in sorted((report.preflight or {}).get("refused", {}).items()):
        for finding in entry:
            fix = f": {finding['fix']}" if finding.get("fix") else ""
            stdout.print(f"refused {name}: {finding['message']}{fix}")
    if (report.preflight or {}).get("skipped"):
        stdout.print(styled(("preflight skipped", "yellow"), " (--skip-preflight)"))
    if report.lost_to is not None:
        stdout.print(f"lost to {report.lost_to.describe()}: it took {report.env} over")


def _show_failed_checks(report: DeliveryReport, inventory: Path | None) -> None:
    """Loud, one line per node: a check that failed, and for a node that runs the digest anyway,
    the rollback command."""
    from envctl.cli.output import stdout, styled

    inv = str(inventory) if inventory else "INVENTORY"
    for name, check in sorted((report.verify or GroupResult({})).items()):
        if isinstance(check, Verified):
            continue
        running = isinstance(report.nodes.get(name), Delivered)
        stdout.print(styled((f"VERIFY FAILED on {name}", "bold red"), f": {check.message}"))
        if running:
            stdout.print(
                f"  {name} runs {short(report.digest)} now; roll it back with: "
                f"envctl rollback {report.env} -i {inv} --limit {name}"
            )
        else:
            stdout.print(f"  {name} was switched back (--atomic)")
