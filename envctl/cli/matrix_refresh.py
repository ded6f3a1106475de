"""`envctl matrix refresh`: diff the committed framework rows against PyPI. Exit 0 clean, 1 diff."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from envctl.cli.output import render, stdout

if TYPE_CHECKING:
    from envctl.services.solve.refresh import RefreshReport


@click.command()
@click.option("--framework", type=click.Choice(["torch", "tensorflow", "jax"]), help="Only this framework.")
@click.option("--matrix", "matrix_dir", type=click.Path(path_type=Path), help="compat_matrix/ dir.")
@click.option("--archs", is_flag=True, help="Also read the GPU archs inside torch/TF wheels (slow).")
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
def refresh(framework: str | None, matrix_dir: Path | None, archs: bool, as_json: bool) -> None:
    """Re-read Python ranges, glibc floors and CUDA pins from PyPI wheels and show what changed."""
    from envctl.adapters.matrix_files import default_matrix_dir
    from envctl.services.solve.refresh import refresh as run_refresh

    report = run_refresh(matrix_dir or default_matrix_dir(), framework, archs=archs)
    render(report.to_json(), ok=report.clean, as_json=as_json, show=lambda: _print_report(report))


def _print_report(report: RefreshReport) -> None:
    from rich.table import Table

    summary = (
        f"{report.checked_rows} PyPI rows checked, {report.skipped_rows} rows on other indexes not checked: "
    )
    if report.clean:
        stdout.print(summary + "no difference")
        return
    table = Table(title="compat_matrix vs PyPI", title_justify="left")
    for column in ("file", "row", "platform", "field", "versions", "committed", "PyPI"):
        table.add_column(column, overflow="fold")
    for d in report.diffs:
        table.add_row(
            d.file,
            d.label if d.row is None else f"[{d.row}] {d.label}",
            d.platform or "-",
            d.field,
            " ".join(d.versions),
            d.committed or "-",
            d.pypi or "-",
        )
    stdout.print(table)
    count = len(report.diffs)
    stdout.print(summary + f"{count} difference" + ("s" if count != 1 else ""))
