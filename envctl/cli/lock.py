"""`envctl lock PROFILE`: thin click layer over envctl.services.lock.lock."""

from __future__ import annotations

from pathlib import Path

import click

from envctl.cli.output import render
from envctl.core.lock import LockOptions
from envctl.services.lock.lock import LockResult, lock_profile

_ALL = ":all:"


@click.command("lock")
@click.argument("profile", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    default=Path("conda-lock.yml"),
    show_default=True,
    help="Lockfile to write.",
)
@click.option("--platform", "platforms", multiple=True, help="Lock only these platforms (repeatable).")
@click.option("--check", is_flag=True, help="Exit 1 when the lock is stale; write nothing.")
@click.option(
    "--upgrade",
    "upgrade",
    multiple=True,
    is_flag=False,
    flag_value=_ALL,
    metavar="[PACKAGE]",
    help="Move exclude-newer to now (for PACKAGE only, if given).",
)
@click.option(
    "--offline",
    is_flag=True,
    help="No network: wheels from --find-links, conda packages from file:// channels.",
)
@click.option(
    "--find-links",
    "find_links",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="A local folder of wheels (repeatable).",
)
@click.option(
    "--channel",
    "channels",
    multiple=True,
    help="Conda channel replacing the profile's (repeatable; file:// allowed).",
)
@click.option("--index-url", help="Default package index instead of PyPI (a mirror).")
@click.option(
    "--exclude-newer",
    help="Ignore files uploaded after this RFC 3339 time (default: recorded, else now).",
)
@click.option(
    "--matrix",
    "matrix_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="compat_matrix/ folder to use.",
)
@click.option("--gpu", "gpus", multiple=True, help="Target GPU (repeatable).")
@click.option("--driver", help="Target NVIDIA driver version.")
@click.option("--arch", "arch", multiple=True, help="Target CPU arch (repeatable).")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the result as JSON (schema envctl.lock/1; see docs/json.md).",
)
@click.option(
    "-i",
    "--inventory",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Targets from these nodes' facts; a lock per node class variant plus an index (docs/fleet.md).",
)
@click.option("--limit", help="With -i: only these groups / nodes.")
@click.option("--single", is_flag=True, help="With -i: one stack for every node, or name who blocks it.")
@click.option("--accept-new-host-keys", is_flag=True, help="With -i: trust and record unknown host keys.")
def lock(
    profile: Path,
    output: Path,
    platforms: tuple[str, ...],
    check: bool,
    upgrade: tuple[str, ...],
    offline: bool,
    find_links: tuple[Path, ...],
    channels: tuple[str, ...],
    index_url: str | None,
    exclude_newer: str | None,
    matrix_dir: Path | None,
    gpus: tuple[str, ...],
    driver: str | None,
    arch: tuple[str, ...],
    as_json: bool,
    inventory: Path | None,
    limit: str | None,
    single: bool,
    accept_new_host_keys: bool,
) -> None:
    """Resolve PROFILE into a pinned, hashed, multi-platform conda-lock.yml (with -i: one per
    variant of the nodes' classes, and conda-lock.fleet.toml naming each variant's nodes)."""
    options = LockOptions(
        output=output,
        platforms=platforms,
        check=check,
        upgrade=bool(upgrade),
        upgrade_packages=tuple(p for p in upgrade if p != _ALL) if _ALL not in upgrade else (),
        offline=offline,
        find_links=find_links,
        channels=channels,
        index_url=index_url,
        exclude_newer=exclude_newer,
    )
    if inventory is not None:
        if gpus or driver or arch:
            raise click.UsageError("-i takes --gpu/--driver/--arch from the nodes: drop them")
        _lock_inventory(profile, options, inventory, limit, matrix_dir, single, accept_new_host_keys, as_json)
        return
    if limit or single:
        raise click.UsageError("--limit and --single need -i/--inventory")
    from envctl.cli.progress import reporter

    progress, shown = reporter("lock", as_json)
    with shown:
        result = lock_profile(
            profile, options, matrix_dir=matrix_dir, gpus=gpus, driver=driver, arch=arch, progress=progress
        )
    # a stale lock under --check is a request not met: exit 1
    render(result.to_dict(), ok=result.status != "stale", as_json=as_json, show=lambda: _show(result))


def _lock_inventory(
    profile: Path,
    options: LockOptions,
    inventory: Path,
    limit: str | None,
    matrix_dir: Path | None,
    single: bool,
    accept_new_host_keys: bool,
    as_json: bool,
) -> None:
    from envctl.cli.nodes_common import resolve_nodes, ssh_pool
    from envctl.services.lock.fleet_lock import lock_from_facts
    from envctl.services.solve.from_nodes import nodes_facts

    nodes = resolve_nodes(inventory, limit)
    with ssh_pool(accept_new_host_keys) as pool:
        facts = nodes_facts(nodes, pool, subject=str(inventory))
    result = lock_from_facts(profile, facts, options, matrix_dir=matrix_dir, single=single)

    def show() -> None:

        from envctl.cli.output import console
        from envctl.core.hostlist import compress

        for v, r in zip(result.fleet.variants, result.locks, strict=True):
            console().print(f"variant {v.name}: nodes {compress(v.nodes)}")
            _show(r)
        if result.index:
            console().print(f"index {result.index}")

    stale = any(r.status == "stale" for r in result.locks)
    render(result.to_dict(), ok=not stale, as_json=as_json, show=show)


def _show(result: LockResult) -> None:
    from envctl.cli.output import console, styled

    stdout = console()
    short = result.content_hash[:12]
    path, reason = str(result.path), result.reason
    word, color, rest = {
        "written": ("locked", "green", f" {path} (content {short}, exclude-newer {result.exclude_newer})"),
        "reused": ("up to date", "green", f" {path}: inputs unchanged, nothing resolved ({short})"),
        "fresh": ("fresh", "green", f" {path} (content {short})"),
        "stale": ("stale", "red", f" {path}: {reason}; run envctl lock to update it"),
    }[result.status]
    stdout.print(styled((word, color), rest))
    if result.platforms:
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for column in ("platform", "pip", "conda", "CUDA", "cuDNN", "NCCL", "frameworks"):
            table.add_column(column)
        for p in result.platforms:
            table.add_row(
                p.platform,
                str(p.pip),
                str(p.conda),
                p.cuda or "-",
                p.cudnn or "-",
                p.nccl or "-",
                ", ".join(p.frameworks) or "-",
            )
        stdout.print(table)
    for warning in result.warnings:
        stdout.print(styled(("warning:", "yellow"), f" {warning}"))
