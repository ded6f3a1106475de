"""``envctl push IMAGE -i INVENTORY``: deliver an OCI image to every node, verified and atomic."""

from __future__ import annotations

from pathlib import Path

import click

from envctl.cli.nodes_common import FiniteFloat, inventory_option, render_delivery, resolve_nodes, ssh_pool


@click.command()
@click.argument("image", type=click.Path(path_type=Path, file_okay=False))
@inventory_option
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
    "--skip-preflight",
    is_flag=True,
    help="Push without holding the nodes' facts against what the image needs (says so loudly).",
)
@click.option("--accept-new-host-keys", is_flag=True, help="Trust and record unknown host keys.")
@click.option("--json", "as_json", is_flag=True, help="Print the per-node result as JSON.")
def push(
    image: Path,
    inventory: Path,
    env_name: str | None,
    limit: str | None,
    parallel: int,
    max_fail: str | None,
    lock_wait: float,
    atomic: bool,
    skip_preflight: bool,
    accept_new_host_keys: bool,
    as_json: bool,
) -> None:
    """Send IMAGE (an OCI layout directory) to the nodes: only missing blobs, then switch."""
    from envctl.adapters.oci_layout import read_image
    from envctl.cli.progress import push_reporter
    from envctl.core.delivery import check_env_name, default_env_name, parse_max_fail
    from envctl.services.deliver import preflight as pre
    from envctl.services.deliver import push as svc

    img = read_image(image, platform=svc.NODE_PLATFORM)
    where = "--env" if env_name else f"{image}: the image's name (or pass --env)"
    env = check_env_name(env_name or default_env_name(img.ref_name, image.name), where)
    nodes = resolve_nodes(inventory, limit)
    opts = svc.PushOptions(
        env=env,
        parallel=parallel,
        max_fail=parse_max_fail(max_fail, len(nodes)),
        atomic=atomic,
        by=svc.who(),
        lock_timeout=lock_wait,
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
