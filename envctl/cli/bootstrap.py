"""``envctl bootstrap script`` writes the node bootstrap script; ``envctl bootstrap -i INV`` runs it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from envctl.core.bootstrap import SCRIPT_RUNTIMES

F = TypeVar("F", bound=Callable[..., Any])


def _script_options(fn: F) -> F:
    """What the script prepares; shared by ``bootstrap script`` and ``bootstrap -i``."""
    for option in reversed(
        [
            click.option(
                "--runtime", type=click.Choice(SCRIPT_RUNTIMES), help="Container runtime to install."
            ),
            click.option("--gpu", is_flag=True, help="Check the NVIDIA driver; set up the toolkit and CDI."),
            click.option(
                "--user", "service_user", help="Create this service user; allow it the agent via sudo."
            ),
            click.option("--authorized-key", help="An SSH public key line to authorize for --user."),
        ]
    ):
        fn = option(fn)
    return fn


def _options(runtime: str | None, gpu: bool, service_user: str | None, key: str | None, **paths: str) -> Any:
    from envctl.core.bootstrap import BootstrapOptions, check_options

    return check_options(
        BootstrapOptions(runtime or "prefix", gpu, service_user=service_user, authorized_key=key, **paths)  # type: ignore[arg-type]
    )


@click.group(invoke_without_command=True)
@click.option(
    "-i", "--inventory", type=click.Path(path_type=Path, dir_okay=False), help="Run on these nodes."
)
@click.option("--limit", help="Only these groups / nodes.")
@_script_options
@click.option("--force", is_flag=True, help="Run the script even where its check finds nothing to do.")
@click.option("--accept-new-host-keys", is_flag=True, help="Trust and record unknown host keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-node result as JSON.")
@click.pass_context
def bootstrap(
    ctx: click.Context,
    inventory: Path | None,
    limit: str | None,
    runtime: str | None,
    gpu: bool,
    service_user: str | None,
    authorized_key: str | None,
    force: bool,
    accept_new_host_keys: bool,
    as_json: bool,
) -> None:
    """Prepare nodes for envctl: `bootstrap script` writes the script, `bootstrap -i INV` runs it.

    Over SSH it runs on the nodes whose check says they need it (sudo -n where the login is not
    root), each with its inventory store, prefix root and runtime, then checks again and shows
    per node what changed.
    """
    if ctx.invoked_subcommand is not None:
        return
    if inventory is None:
        raise click.UsageError("give -i INVENTORY to bootstrap nodes, or use `envctl bootstrap script`")
    from envctl.cli.nodes_common import resolve_nodes, ssh_pool
    from envctl.cli.output import render
    from envctl.services.bootstrap import run as svc

    options = _options(runtime, gpu, service_user, authorized_key)  # per node: store, root, runtime
    nodes = resolve_nodes(inventory, limit)
    with ssh_pool(accept_new_host_keys) as pool:
        results = svc.bootstrap_nodes(nodes, pool, options, runtime_given=runtime is not None, force=force)
    complete = all(r.status != "incomplete" for r in results.succeeded.values())
    render(
        results.as_json("bootstrap"), ok=results.ok and complete, as_json=as_json, show=lambda: _show(results)
    )


def _show(results: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from envctl.cli.output import stdout

    table = Table(title="bootstrap")
    for col in ("node", "status", "needed (before)", "changed", "left (after)", "facts before -> after"):
        table.add_column(col)
    colors = {"bootstrapped": "green", "unchanged": "cyan", "incomplete": "yellow"}
    for name, r in results.items():
        if isinstance(r, Exception):
            table.add_row(name, "[red]failed[/]", "", "", "", escape(getattr(r, "message", str(r))))
            continue
        moved = "; ".join(f"{k}: {b or '-'} -> {a or '-'}" for k, (b, a) in r.fact_changes.items())
        left = [*r.after.changed, *(f"missing {m}" for m in r.after.missing)]
        table.add_row(
            name,
            f"[{colors[r.status]}]{r.status}[/]",
            ", ".join(r.before.changed) or "nothing",
            ", ".join(r.applied.changed) if r.applied else "-",
            ", ".join(left) or "nothing",
            escape(moved) or "no change",
        )
    stdout.print(table)
    for name, r in results.items():
        if not isinstance(r, Exception):
            for key in r.after.host_keys:
                stdout.print(f"{name}: host key {escape(key)}")


@bootstrap.command("script")
@_script_options
@click.option("--store", default=None, help="The agent's store (default /var/lib/envctl).")
@click.option(
    "--prefix-root", default=None, help="Where prefix environments unpack (default /opt/envctl/envs)."
)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write here (0755) instead of stdout.")
@click.option("--force", is_flag=True, help="Replace an -o file envctl did not write.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary (needs -o).")
def script(
    runtime: str | None,
    gpu: bool,
    service_user: str | None,
    authorized_key: str | None,
    store: str | None,
    prefix_root: str | None,
    output: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Write a POSIX sh script that prepares a node (run it as root; `--check` changes nothing).

    It installs Python for the agent, makes the store and prefix root, installs this envctl's
    agent, optionally a service user with a sudo rule for that agent only, the container runtime,
    and with --gpu the NVIDIA container toolkit and CDI spec (never a driver: it says what is
    missing). It prints the host key fingerprints. Exit 0 ready, 1 failed, 2 usage, 3 something
    is missing that it does not install, 4 (--check) it would change something.
    """
    from envctl.cli.output import console, render
    from envctl.core.node import DEFAULT_PREFIX_ROOT, DEFAULT_STORE
    from envctl.errors import InputError
    from envctl.services.bootstrap.script import render as render_script
    from envctl.services.bootstrap.script import write_script

    if as_json and output is None:
        raise InputError("--json needs -o FILE (stdout is the script)")
    options = _options(
        runtime,
        gpu,
        service_user,
        authorized_key,
        store=store or DEFAULT_STORE,
        prefix_root=prefix_root or DEFAULT_PREFIX_ROOT,
    )
    result = render_script(options)
    if output is None:
        click.echo(result.text, nl=False)
        return
    write_script(result, output, force=force)
    document = {"schema": "envctl.bootstrap-script/1", "output": str(output), **result.to_dict()}

    def show() -> None:
        console(err=True).print(f"wrote {output} (agent {result.agent_sha256[:12]})", highlight=False)

    render(document, ok=True, as_json=as_json, show=show)
