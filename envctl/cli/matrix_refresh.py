"""`envctl matrix refresh`: diff the committed framework rows against PyPI. Exit 0 clean, 1 diff."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.table import Table

from envctl.cli.output import emit_json, fail_json, stdout
from envctl.errors import EnvctlError


@click.command()
@click.option("--framework", type=click.Choice(["torch", "tensorflow", "jax"]), help="Only this framework.")
@click.option("--matrix", "matrix_dir", type=click.Path(path_type=Path), help="compat_matrix/ dir.")
@click.option("--archs", is_flag=True, help="Also read the GPU archs inside torch/TF wheels (slow).")
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
def refresh(framework: str | None, matrix_dir: Path | None, archs: bool, as_json: bool) -> None:
    """Re-read Python ranges, glibc floors and CUDA pins from PyPI wheels and show what changed."""
    from envctl.adapters.matrix_files import default_matrix_dir
    from envctl.services.solve.refresh import refresh as run_refresh

    try:
        report = run_refresh(matrix_dir or default_matrix_dir(), framework, archs=archs)
    except EnvctlError as exc:
        if as_json:
            fail_json(exc)
        raise
    if as_json:
        emit_json({"ok": report.clean, **report.to_json()})
    else:
        summary = (
            f"{report.checked_rows} PyPI rows checked, {report.skipped_rows} rows on other "
            f"indexes not checked: "
        )
        if report.clean:
            stdout.print(summary + "no difference")
        else:
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
    if not report.clean:
        sys.exit(1)
