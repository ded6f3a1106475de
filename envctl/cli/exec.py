"""`envctl exec`: run one command on every node (or some), in parallel, and show what each said."""

from __future__ import annotations

from pathlib import Path

import click

from envctl.cli.nodes_common import FiniteFloat
from envctl.cli.output import console, render, styled


@click.command(name="exec", context_settings={"ignore_unknown_options": True})
@click.option("-i", "--inventory", "path", required=True, type=click.Path(path_type=Path))
@click.option("--limit", default=None, help="Groups, nodes or hostlists, comma separated.")
@click.option("--parallel", type=click.IntRange(1, 256), default=16, show_default=True)
@click.option(
    "--timeout",
    type=FiniteFloat(0.001, 7 * 24 * 3600),
    default=600,
    show_default=True,
    help="Seconds per node.",
)
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
    from envctl.cli.nodes_common import resolve_nodes, ssh_pool
    from envctl.errors import EnvctlError
    from envctl.services.cluster.reach import CommandFailed, run_everywhere

    nodes = resolve_nodes(path, limit)
    with ssh_pool(accept_new_host_keys) as pool:
        results = run_everywhere(nodes, argv, pool, parallel=parallel, timeout=timeout)

    def show() -> None:
        for name, value in results.items():
            if isinstance(value, CommandFailed):
                mark, out = (f"exit {value.output.exit_code}", "red"), value.output
            elif isinstance(value, EnvctlError):
                console().print(styled(("FAIL", "red"), f" {value.message}"))
                continue
            else:
                mark, out = ("ok  ", "green"), value
            text = (out.stdout + out.stderr).strip()
            console().print(styled(mark, f" {name}: {text}"))

    render(results.as_json("exec"), ok=results.ok, as_json=as_json, show=show)
