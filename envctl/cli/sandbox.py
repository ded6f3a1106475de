"""`envctl sandbox up|down|status`: sshd nodes in network namespaces on this machine."""

from __future__ import annotations

import click

from envctl.cli.output import console, render
from envctl.core.sandbox import SANDBOX_RUNTIMES

DIR_HELP = "Sandbox directory (state, keys, per-node stores)."


@click.group()
def sandbox() -> None:
    """A local cluster for trying and testing pushes (needs root)."""


@sandbox.command()
@click.option("--nodes", "count", type=int, default=3, show_default=True, help="How many nodes.")
@click.option(
    "--runtime",
    type=click.Choice(SANDBOX_RUNTIMES),
    default="prefix",
    show_default=True,
    help="Node runtime; docker starts one engine per node.",
)
@click.option("--rate", default=None, help="Shape each node's link with tc, e.g. 1gbit.")
@click.option("--dir", "directory", default=None, help=DIR_HELP)
@click.option("--prefix", default="ec", show_default=True, help="Prefix of namespace/link names.")
@click.option("--subnet", default="10.251.0.0/24", show_default=True, help="Bridge subnet.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def up(
    count: int,
    runtime: str,
    rate: str | None,
    directory: str | None,
    prefix: str,
    subnet: str,
    as_json: bool,
) -> None:
    """Create N nodes, each with its own sshd, store, /opt/envctl and /tmp.

    Needs ip (iproute2), sshd and ssh-keygen (openssh-server), nsenter and unshare (util-linux),
    tc for --rate, and dockerd (docker.io) for --runtime docker.
    """
    from envctl.core.sandbox import plan_sandbox
    from envctl.services.cluster import sandbox as service

    plan = plan_sandbox(
        count,
        directory=directory or service.DEFAULT_DIR,
        prefix=prefix,
        subnet=subnet,
        runtime=runtime,
        rate=rate,
    )
    service.up(plan)
    document = {
        "schema": "envctl.sandbox-up/1",
        "dir": plan.dir,
        "inventory": plan.inventory,
        "known_hosts": plan.known_hosts,
        "key": plan.client_key,
        "runtime": plan.runtime,
        "rate": plan.rate,
        "nodes": [
            {"name": n.name, "address": n.address, "netns": n.netns, "docker_host": n.docker_host}
            for n in plan.nodes
        ],
    }

    def show() -> None:
        console().print(f"sandbox with {len(plan.nodes)} nodes is up in {plan.dir}")
        for node in plan.nodes:
            console().print(f"  {node.name}  {node.address}  (netns {node.netns})")
        console().print(f"inventory: {plan.inventory}")

    render(document, ok=True, as_json=as_json, show=show)


@sandbox.command()
@click.option("--dir", "directory", default=None, help=DIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def down(directory: str | None, as_json: bool) -> None:
    """Remove everything the sandbox made (also after a crash)."""
    from envctl.services.cluster import sandbox as service

    report = service.down(directory or service.DEFAULT_DIR)
    render(
        {"schema": "envctl.sandbox-down/1", **report.to_dict()},
        ok=True,
        as_json=as_json,
        show=lambda: console().print(f"removed {len(report.removed)} things from {report.dir}"),
    )


@sandbox.command()
@click.option("--dir", "directory", default=None, help=DIR_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def status(directory: str | None, as_json: bool) -> None:
    """Per node: namespace, sshd, reachability, engine. Exit 1 if any node is down."""
    from envctl.services.cluster import sandbox as service

    plan, nodes = service.status(directory or service.DEFAULT_DIR)
    healthy = all(n.reachable and (n.dockerd_pid or not n.docker_host) for n in nodes)
    document = {
        "schema": "envctl.sandbox-status/1",
        "dir": plan.dir,
        "healthy": healthy,
        "nodes": [n.to_dict() for n in nodes],
    }

    def show() -> None:
        for n in nodes:
            state = "up" if n.reachable else "DOWN"
            engine = f"  dockerd {n.dockerd_pid or 'DOWN'}" if n.docker_host else ""
            console().print(f"{n.name}  {n.address}  sshd {n.sshd_pid or '-'}  {state}{engine}")

    render(document, ok=healthy, as_json=as_json, show=show)
