"""`envctl exec`: run one command on every node (or some), in parallel, and show what each said."""

from __future__ import annotations

from pathlib import Path

import click

from envctl.cli.output import console, render


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.option("-i", "--inventory", "path", required=True, type=click.Path(path_type=Path))
@click.option("--limit", default=None, help="Groups, nodes or hostlists, comma separated.")
@click.option("--parallel", type=click.IntRange(1, 256), default=16, show_default=True)
@click.option("--timeout", type=float, default=600, show_default=True, help="Seconds per node.")
@click.option(
    "--accept-new-host-keys", is_flag=True, help="Record unknown host keys (a changed key is still refused)."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(
    path: Path,
    limit: str | None,
    parallel: int,
    timeout: float,
    accept_new_host_keys: bool,
    as_json: bool,
    argv: tuple[str, ...],
) -> None:
    """Run ARGV on the nodes (e.g. `envctl exec -i inv.toml -- /opt/envctl/envs/demo/bin/python -V`).

    ARGV is passed as separate, quoted arguments, never through a shell. Exit 0 when every node ran
    it with exit status 0, 1 otherwise.
    """
    from rich.markup import escape

    from envctl.adapters.inventory_file import load_inventory
    from envctl.services.cluster.reach import run_everywhere

    nodes = load_inventory(path).select(limit)
    results = run_everywhere(
        nodes, argv, accept_new_host_keys=accept_new_host_keys, parallel=parallel, timeout=timeout
    )
    ok = all(out.exit_code == 0 for out in results.succeeded.values()) and not results.failed
    report: dict[str, object] = {
        n: {"ok": o.exit_code == 0, **o.to_dict()} for n, o in results.succeeded.items()
    }
    report.update({n: {"ok": False, "error": e.message, "hint": e.hint} for n, e in results.failed.items()})

    def show() -> None:
        for name, out in results.succeeded.items():
            mark = "[green]ok[/]  " if out.exit_code == 0 else f"[red]exit {out.exit_code}[/]"
            text = (out.stdout + out.stderr).strip()
            console().print(f"{mark} {escape(name)}: {escape(text)}")
        for error in results.failed.values():
            console().print(f"[red]FAIL[/] {escape(error.message)}")

    render({"schema": "envctl.exec/1", "nodes": report}, ok=ok, as_json=as_json, show=show)
