"""`envctl inventory show|import`: read a cluster inventory, or convert an Ansible one."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from envctl.cli.output import console, render

if TYPE_CHECKING:
    from envctl.core.node import NodeSpec


@click.group()
def inventory() -> None:
    """Cluster inventories (TOML; Ansible INI/YAML can be imported)."""


@inventory.command()
@click.option("-i", "--inventory", "path", required=True, type=click.Path(path_type=Path))
@click.option("--limit", default=None, help="Groups, nodes or hostlists, comma separated.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def show(path: Path, limit: str | None, as_json: bool) -> None:
    """Show every node with its resolved settings (after groups and the SSH configuration)."""
    from envctl.cli.nodes_common import load_checked

    inv = load_checked(path)
    nodes = inv.select(limit)
    document = {"schema": "envctl.inventory/1", **inv.to_dict(), "nodes": [n.to_dict() for n in nodes]}
    render(document, ok=True, as_json=as_json, show=lambda: _print_nodes(nodes))


def _print_nodes(nodes: Sequence[NodeSpec]) -> None:
    from rich.table import Table

    table = Table("node", "address", "user", "keys", "via", "runtime", "store", "groups")
    for n in nodes:
        local = n.connection == "local"
        table.add_row(
            n.name,
            "(this machine)" if local else f"{n.host}:{n.port}",
            n.user + (f" (sudo -u {n.become_user})" if n.become else ""),
            "" if local else ", ".join(n.key_files) or "(agent)",
            _route(n),
            n.runtime,
            n.store,
            ",".join(n.groups),
        )
    console().print(table, markup=False)


def _route(node: NodeSpec) -> str:
    """``bastion > hop2`` for a jump chain, or the ProxyCommand."""
    if node.proxy_command is not None:
        return f"ProxyCommand {node.proxy_command}"
    hops: list[str] = []
    jump = node.jump
    while jump is not None:
        hops.insert(0, jump.name)
        jump = jump.jump
    return " > ".join(hops)


@inventory.command(name="import")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write TOML here.")
@click.option(
    "--format", "fmt", type=click.Choice(["ini", "yaml"]), help="Read with the built-in reader as this."
)
@click.option(
    "--reader",
    type=click.Choice(["auto", "ansible", "builtin"]),
    default="auto",
    show_default=True,
    help="ansible: `ansible-inventory --list` (ansible-core); builtin: envctl's own INI/YAML reader; "
    "auto: ansible when it is installed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
def import_(source: Path, output: Path | None, fmt: str | None, reader: str, as_json: bool) -> None:
    """Convert an Ansible inventory (file, directory or dynamic script) into an envctl TOML inventory.

    Maps ansible_host, ansible_port, ansible_user, ansible_ssh_private_key_file,
    ansible_python_interpreter, ansible_become(_user), ansible_connection=local and ProxyJump /
    ProxyCommand / -i inside ansible_ssh_common_args; groups and children become flat groups.
    Every variable dropped is named on stderr. Without -o the TOML goes to stdout.
    """
    from envctl.adapters.inventory_file import import_ansible, write_inventory
    from envctl.cli.output import warn

    text, document, dropped = import_ansible(source, fmt, reader)
    if output is not None:
        write_inventory(output, text)
    for what, (why, hosts) in dropped.items():
        more = f" and {len(hosts) - 3} more" if len(hosts) > 3 else ""
        warn(f"{source}: {what} {why} (dropped; hosts {', '.join(hosts[:3])}{more})")
    summary = {
        "schema": "envctl.inventory-import/1",
        "source": str(source),
        "output": None if output is None else str(output),
        "nodes": sorted(document["nodes"]),
        "groups": {g: t["nodes"] for g, t in document["groups"].items()},
        "ignored_vars": sorted({what.split()[0] for what in dropped}),
        "dropped": {what: {"why": why, "hosts": hosts} for what, (why, hosts) in dropped.items()},
        "toml": text if output is None else None,
    }

    def show() -> None:
        if output is None:
            sys.stdout.write(text)
            return
        console().print(f"wrote {len(document['nodes'])} nodes to {output}", markup=False)

    render(summary, ok=True, as_json=as_json, show=show)


@inventory.command()
@click.option("-i", "--inventory", "path", required=True, type=click.Path(path_type=Path))
@click.option("--limit", default=None, help="Groups, nodes or hostlists, comma separated.")
@click.option("--parallel", type=click.IntRange(1, 256), default=16, show_default=True)
@click.option(
    "--accept-new-host-keys",
    is_flag=True,
    help="Record the host key of a node not yet in known_hosts (a changed key is still refused).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def check(path: Path, limit: str | None, parallel: int, accept_new_host_keys: bool, as_json: bool) -> None:
    """Connect to every node and run a command there. Exit 1 unless all nodes answer."""
    from rich.markup import escape

    from envctl.cli.nodes_common import resolve_nodes, ssh_pool
    from envctl.services.cluster.reach import check_nodes

    nodes = resolve_nodes(path, limit)
    with ssh_pool(accept_new_host_keys) as pool:
        results = check_nodes(nodes, pool, parallel=parallel)

    def show() -> None:
        for name, reach in results.succeeded.items():
            answer = escape(f"{reach.user}  {reach.kernel}  {reach.seconds:.2f}s")
            console().print(f"[green]ok[/]    {name}  {answer}")
        for error in results.failed.values():
            console().print(f"[red]FAIL[/]  {escape(error.message)}", markup=True)
            if error.hint:
                console().print(f"      hint: {escape(error.hint)}")
        console().print(f"{len(results.succeeded)}/{len(results)} nodes reachable")

    render(results.as_json("inventory-check"), ok=results.ok, as_json=as_json, show=show)
