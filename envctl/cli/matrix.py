"""`envctl matrix show|validate|refresh`."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import click

from envctl.cli import LazyGroup
from envctl.cli.output import console, render
from envctl.core.shown import shown
from envctl.errors import InputError


class MatrixGroup(LazyGroup):
    lazy: ClassVar[dict[str, str]] = {"refresh": "envctl.cli.matrix_refresh:refresh"}


@click.group(cls=MatrixGroup)
def matrix() -> None:
    """Inspect and maintain the compatibility matrix (compat_matrix/)."""


@matrix.command()
@click.option("--matrix", "matrix_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def validate(matrix_dir: Path | None, as_json: bool) -> None:
    """Check every matrix file against its schema and cross-references."""
    from envctl.adapters.matrix_files import load_matrix

    m = load_matrix(matrix_dir)
    counts = {
        "toolkits": len(m.toolkits),
        "gpus": len(m.gpus),
        "compute_capabilities": len(m.ccs),
        "cudnn_series": len(m.cudnn),
        **{f"{fw.name}_builds": len(fw.builds) for fw in m.frameworks},
        **{f"{fw.name}_releases": len(fw.versions()) for fw in m.frameworks},
    }
    document = {"schema": "envctl.matrix-validate/1", "matrix_version": m.version, "counts": counts}
    summary = f"matrix ok ({m.version[:12]}): " + ", ".join(f"{v} {k}" for k, v in counts.items())
    render(document, ok=True, as_json=as_json, show=lambda: console().print(summary))


@matrix.command()
@click.argument("subject")
@click.option("--matrix", "matrix_dir", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def show(subject: str, matrix_dir: Path | None, as_json: bool) -> None:
    """Print one subject as a table: torch, tensorflow, jax, cuda, gpus, cudnn."""
    from envctl.adapters.matrix_files import load_matrix

    m = load_matrix(matrix_dir)
    rows: list[dict[str, str]]
    fw = m.framework(subject)
    if fw is not None:
        rows = [
            {
                "versions": _span([str(v) for v in b.versions]),
                "variant": b.variant,
                "index": b.index.name,
                "platforms": " ".join(b.platforms),
                "python": str(b.python),
                "cuda": str(b.cuda or "-"),
                "cudnn": str(b.cudnn or "-"),
                "nccl": str(b.nccl or "-"),
                "archs": " ".join(f"{a.major}{a.minor}" for a in b.archs)
                + (" +ptx " + " ".join(f"{p.major}{p.minor}" for p in b.ptx) if b.ptx else ""),
                "glibc": str(b.glibc or "-"),
                "source": b.source + (" (inferred)" if b.inferred else ""),
            }
            for b in fw.builds
        ]
    elif subject == "cuda":
        rows = [
            {"cuda": str(t.version), "min driver": str(t.min_driver), "source": t.source} for t in m.toolkits
        ]
        rows += [
            {"cuda": f"{x.major}.x minor-compat", "min driver": str(x.min_driver), "source": x.source}
            for x in m.majors
        ]
    elif subject == "gpus":
        rows = [
            {
                "gpu": g.name,
                "cc": str(g.cc),
                "datacenter": str(g.datacenter).lower(),
                "aliases": ", ".join(g.aliases),
                "source": g.source,
            }
            for g in m.gpus
        ]
    elif subject == "cudnn":
        rows = [
            {
                "series": str(c.series),
                "releases": " ".join(str(v) for v in c.versions),
                "cuda": " | ".join(str(s) for s in c.cuda),
                "source": c.source,
            }
            for c in m.cudnn
        ]
    else:
        raise InputError(
            f"matrix show: unknown subject {shown(subject)}",
            hint="use torch, tensorflow, jax, cuda, gpus or cudnn",
        )
    document = {"schema": "envctl.matrix-show/1", "subject": subject, "rows": rows}
    render(document, ok=True, as_json=as_json, show=lambda: _print_rows(subject, rows))


def _print_rows(subject: str, rows: list[dict[str, str]]) -> None:
    from rich.table import Table

    table = Table(title=subject, title_justify="left")
    for col in rows[0] if rows else []:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*row.values())
    console().print(table)


def _span(versions: list[str]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]} .. {versions[-1]} ({len(versions)})"
