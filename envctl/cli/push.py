"""``envctl push IMAGE -i INVENTORY``: deliver an OCI image to every node, verified and atomic."""

from __future__ import annotations

from pathlib import Path

import click

from envctl.cli.nodes_common import FiniteFloat, inventory_option, render_delivery, resolve_nodes, ssh_pool
from envctl.cli.nodes_common import show_delivery as render_delivery_table


@click.command()
@click.argument("image", type=click.Path(path_type=Path, file_okay=False), required=False)
@inventory_option
@click.option(
    "--fleet",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A fleet lock index (lock -i): each node gets its variant's image (give --variant).",
)
@click.option(
    "--variant", "variants", multiple=True, metavar="NAME=LAYOUT", help="With --fleet: a variant's image."
)
@click.option("--env", "env_name", help="Environment name on the nodes (default: the image's ref name).")
@click.option("--limit", help="Only these groups / nodes (comma separated, hostlists allowed).")
@click.option(
    "--parallel", type=click.IntRange(1, 256), default=8, show_default=True, help="Nodes served at once."
)
@click.option("--max-fail", help="Stop activating once more than N (or P%) nodes failed.")
@click.option(
    "--lock-wait",
    type=FiniteFloat(0, 7 * 24 * 3600),
    default=600.0,
    show_default=True,
    help="Seconds to wait for another envctl operation's lock on a node's store.",
)
@click.option("--atomic", is_flag=True, help="Activate nowhere unless every node can switch.")
@click.option(
    "--fanout",
    type=click.Choice(["auto", "direct", "relay", "registry"]),
    default="auto",
    show_default=True,
    help="How blobs reach the nodes: from here to each, relayed by the nodes, or through a registry.",
)
@click.option(
    "--relay-plaintext",
    is_flag=True,
    help="Relay without TLS between nodes (the token still guards each relay; traffic is readable).",
)
@click.option("--via", metavar="registry://HOST[:PORT]/REPO", help="The registry for --fanout registry.")
@click.option(
    "--skip-preflight",
    is_flag=True,
    help="Push without holding the nodes' facts against what the image needs (says so loudly).",
)
@click.option("--accept-new-host-keys", is_flag=True, help="Trust and record unknown host keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-node result as JSON.")
def push(
    image: Path | None,
    inventory: Path,
    fleet: Path | None,
    variants: tuple[str, ...],
    env_name: str | None,
    limit: str | None,
    parallel: int,
    max_fail: str | None,
    lock_wait: float,
    atomic: bool,
    fanout: str,
    via: str | None,
    relay_plaintext: bool,
    skip_preflight: bool,
    accept_new_host_keys: bool,
    as_json: bool,
) -> None:
    """Send IMAGE (an OCI layout directory) to the nodes: only missing blobs, then switch."""
    from envctl.adapters.oci_layout import read_image
    from envctl.cli.progress import push_reporter
    from envctl.core.delivery import check_env_name, default_env_name, parse_max_fail
    from envctl.core.fanout_mode import choose
    from envctl.services.deliver import preflight as pre
    from envctl.services.deliver import push as svc
    from envctl.services.deliver.stagers import make_stager

    if (image is None) == (fleet is None) or bool(variants) != (fleet is not None):
        raise click.UsageError("give IMAGE, or --fleet INDEX with a --variant NAME=LAYOUT per variant")
    if fleet is not None:
        _push_fleet(
            fleet, variants, inventory, env_name, limit, parallel, lock_wait, accept_new_host_keys, as_json
        )
        return
    assert image is not None
    img = read_image(image, platform=svc.NODE_PLATFORM)
    where = "--env" if env_name else f"{image}: the image's name (or pass --env)"
    env = check_env_name(env_name or default_env_name(img.ref_name, image.name), where)
    nodes = resolve_nodes(inventory, limit)
    choice = choose(fanout, len(nodes), via)
    if relay_plaintext and choice.mode == "relay":
        from envctl.cli.output import warn

        warn(
            "--relay-plaintext: blobs travel between nodes UNENCRYPTED (anyone on the network can read them)"
        )
    opts = svc.PushOptions(
        env=env,
        parallel=parallel,
        max_fail=parse_max_fail(max_fail, len(nodes)),
        atomic=atomic,
        by=svc.who(),
        lock_timeout=lock_wait,
        stager=make_stager(choice, via, relay_plaintext),
        fanout_why=choice.why,
    )
    reporter, shown = push_reporter(as_json)
    with ssh_pool(accept_new_host_keys) as pool:
        if skip_preflight:
            warn_skipped_preflight()
            checked = pre.SKIPPED
        else:
            checked = pre.preflight(img, nodes, pool, parallel=parallel)
        with shown:
            report = svc.push(img, nodes, pool, opts, reporter, checked.errors(), checked.as_json())
    render_delivery(report, as_json)


def warn_skipped_preflight() -> None:
    """One line on stderr (never in the JSON on stdout): what --skip-preflight did not check."""
    from envctl.cli.output import warn

    warn(
        "--skip-preflight: no node's driver, GPUs, glibc, CPU architecture and flags or free "
        "space was checked against this image; a node that cannot run it may be switched to it"
    )


def _push_fleet(
    index: Path,
    variants: tuple[str, ...],
    inventory: Path,
    env_name: str | None,
    limit: str | None,
    parallel: int,
    lock_wait: float,
    accept_new_host_keys: bool,
    as_json: bool,
) -> None:
    """Each variant's image to that variant's nodes (docs/fleet.md); exit 1 unless all succeeded."""
    from envctl.adapters.fleet_index import read_index
    from envctl.adapters.oci_layout import read_image
    from envctl.cli.output import render
    from envctl.core.delivery import check_env_name
    from envctl.services.deliver import push as svc
    from envctl.services.deliver.fleet_push import push_fleet, variant_groups

    if not env_name:
        raise click.UsageError("--fleet needs --env (the variants' images share one environment name)")
    images = {}
    for spec in variants:
        name, sep, layout = spec.partition("=")
        if not sep or not name or not layout:
            raise click.UsageError(f"--variant {spec!r}: expected NAME=LAYOUT")
        images[name] = read_image(Path(layout), platform=svc.NODE_PLATFORM)
    groups = variant_groups(read_index(index), resolve_nodes(inventory, limit), images)
    opts = svc.PushOptions(
        env=check_env_name(env_name), parallel=parallel, by=svc.who(), lock_timeout=lock_wait
    )
    with ssh_pool(accept_new_host_keys) as pool:
        reports = push_fleet(images, groups, pool, opts)
    if not as_json:
        for report in reports.values():
            render_delivery_table(report)
    ok = all(r.exit_code == 0 for r in reports.values())
    doc = {"schema": "envctl.push-fleet/1", "variants": {n: r.as_json() for n, r in reports.items()}}
    render(doc, ok=ok, as_json=as_json, show=lambda: None)
