"""``envctl build`` and ``envctl render``: thin commands over envctl.services.build.build / render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from envctl.cli import output as cli_output

if TYPE_CHECKING:
    from envctl.adapters.blob_cache import BlobCache
    from envctl.core.progress import Progress
    from envctl.services.build.fleet_build import FleetBuildResult
    from envctl.services.build.model import BuildOptions, BuildResult
    from envctl.services.build.multi import IndexBuildResult
    from envctl.services.build.render import RenderResult


def _cache(cache_dir: Path | None) -> BlobCache:
    from envctl.adapters.blob_cache import BlobCache, default_cache_root

    return BlobCache(cache_dir or default_cache_root())


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@click.command()
@click.argument("lock", type=click.Path(path_type=Path), required=False)
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    help="linux/amd64 (default), linux/arm64, or both (comma separated or repeated): one "
    "multi-platform image, an OCI image index with a manifest per platform.",
)
@click.option(
    "--base",
    "bases",
    multiple=True,
    help="oci:DIR[:TAG], docker-archive:FILE, docker:NAME, base:NAME or HOST/REPO:TAG, or "
    "PLATFORM=REF for one platform (default: the profile's base_image, else "
    "base:debian-bookworm-python, base:debian-bookworm-python-arm64 for linux/arm64).",
)
@click.option(
    "--fleet",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A fleet lock index (lock -i): one image per variant, into -o DIR/VARIANT or beside "
    "each variant's lock (where push --fleet finds it).",
)
@click.option("-o", "--output", type=click.Path(path_type=Path), help="OCI layout directory.")
@click.option("--docker-archive", type=click.Path(path_type=Path), help="Also write a docker-archive tar.")
@click.option("--load", is_flag=True, help="Load the image into the local Docker engine.")
@click.option("--tag", help="Image name:tag (default envctl/<env>:<lock hash>).")
@click.option("--name", "env_name", help="Environment name (default: the lock's profile).")
@click.option("--insecure-registry", is_flag=True, help="Talk plain HTTP to the base's registry.")
@click.option(
    "--builder",
    type=click.Choice(["envctl", "docker"]),
    default="envctl",
    show_default=True,
    help="docker: render a Dockerfile and build it in the engine.",
)
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Default $ENVCTL_CACHE.")
@click.option(
    "--force",
    is_flag=True,
    help="Write over an existing output envctl did not make (only its own entries are replaced).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def build(
    lock: Path | None,
    platforms: tuple[str, ...],
    bases: tuple[str, ...],
    fleet: Path | None,
    output: Path | None,
    docker_archive: Path | None,
    load: bool,
    tag: str | None,
    env_name: str | None,
    insecure_registry: bool,
    builder: str,
    cache_dir: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Build a layered, reproducible OCI image from LOCK, without a Docker daemon."""
    from envctl.services.build.multi import parse_bases, parse_platforms

    if (lock is None) == (fleet is None):
        raise click.UsageError("give LOCK, or --fleet INDEX")
    chosen = parse_platforms(platforms)
    base, per_platform = parse_bases(bases, chosen)
    cache = _cache(cache_dir)
    if builder == "docker":
        if fleet is not None or len(chosen) > 1 or per_platform:
            raise click.UsageError("--builder docker builds one linux/amd64 image from LOCK")
        assert lock is not None
        from envctl.services.build.render import build_with_docker

        if output is not None or docker_archive is not None:
            # the docker builder's result lives in the engine; say so rather than ignore it
            raise click.UsageError("--builder docker writes into the engine: drop -o/--docker-archive")

        from envctl.core.names import valid_name

        name = valid_name("env", env_name, "--name") if env_name else "env"
        image_tag = valid_name("tag", tag or f"envctl/{name}:docker", "--tag")
        image_id = build_with_docker(lock, base, image_tag, cache)
        cli_output.render(
            {"schema": "envctl.build-docker/1", "image_id": image_id, "tag": image_tag},
            ok=True,
            as_json=as_json,
            show=lambda: cli_output.stdout.print(f"built {image_tag} ({image_id}) with docker build"),
        )
        return
    from envctl.cli.progress import reporter
    from envctl.services.build.model import BuildOptions

    if lock is not None and output is None and docker_archive is None and not load:
        output = Path(f"{lock.stem}.oci")
    options = BuildOptions(
        lock=lock or Path(),
        base=base,
        platform=chosen[0],
        output=output,
        docker_archive=docker_archive,
        load=load,
        tag=tag,
        env_name=env_name,
        insecure_registry=insecure_registry,
        cache_root=cache.root,
        force=force,
        platform_bases=tuple(sorted(per_platform.items())),
    )
    progress, shown = reporter("build", as_json)
    with shown:
        result = _build(options, fleet, chosen, cache, progress)
    cli_output.render(result.to_dict(), ok=True, as_json=as_json, show=lambda: _print_any(result))


def _build(
    options: BuildOptions,
    fleet: Path | None,
    platforms: tuple[str, ...],
    cache: BlobCache,
    progress: Progress,
) -> BuildResult | IndexBuildResult | FleetBuildResult:
    from envctl.services.build.build import build_image
    from envctl.services.build.fleet_build import build_fleet
    from envctl.services.build.multi import build_index

    if fleet is not None:
        return build_fleet(fleet, options, platforms, cache, progress)
    if len(platforms) > 1:
        return build_index(options, platforms, cache, progress=progress)
    return build_image(options, cache, progress=progress)


def _print_any(result: BuildResult | IndexBuildResult | FleetBuildResult) -> None:
    from envctl.services.build.fleet_build import FleetBuildResult
    from envctl.services.build.model import BuildResult

    if isinstance(result, BuildResult):
        _print_result(result)
    elif isinstance(result, FleetBuildResult):
        for name, one in result.variants.items():
            cli_output.stdout.print(f"variant {name}", style="bold", highlight=False, markup=False)
            _print_any(one)
    else:
        for image in result.images:
            cli_output.stdout.print(image.platform, style="bold", highlight=False, markup=False)
            _print_result(image)
        cli_output.stdout.print(f"index {result.tag}  {result.index_digest}", highlight=False, markup=False)


def _print_result(result: BuildResult) -> None:
    from rich.table import Table

    table = Table(title=f"{result.tag}  {result.image_digest}")
    for column in ("kind", "contents", "digest", "size", "built"):
        table.add_column(column)
    table.add_row("base", result.base, f"{result.base_layers} layers", _size(result.base_size), "-")
    for layer in result.layers:
        table.add_row(
            layer.kind,
            layer.contents,
            layer.digest[7:19],
            _size(layer.size),
            "cached" if layer.reused else "built",
        )
    cli_output.stdout.print(table)
    python = "the lock's conda python" if result.python_from == "conda" else "a venv on the base's Python"
    cli_output.stdout.print(f"python {result.python}: {python}", highlight=False)
    cli_output.stdout.print(result.verified.summary(), highlight=False)
    for kind, where in result.outputs.items():
        cli_output.stdout.print(f"{kind}: {where}")
    for loaded in result.loaded:
        cli_output.stdout.print(f"loaded: {loaded}")
    cli_output.stdout.print(f"done in {result.timings['total']:.2f}s")


@click.command()
@click.argument("lock", type=click.Path(path_type=Path))
@click.option(
    "--dockerfile",
    "directory",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory to write the Dockerfile and its context into.",
)
@click.option(
    "--from",
    "from_image",
    help="The FROM image, as the Docker engine names it (default: the profile's base_image, "
    "else envctl-base/debian-bookworm-python:latest).",
)
@click.option("--pip-wheel", type=click.Path(path_type=Path), help="pip wheel to vendor.")
@click.option("--name", "env_name", help="Environment name (default: the lock's profile).")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Default $ENVCTL_CACHE.")
@click.option(
    "--force",
    is_flag=True,
    help="Write over an existing output envctl did not make (only its own entries are replaced).",
)
@click.option("--json", "as_json", is_flag=True)
def render(
    lock: Path,
    directory: Path,
    from_image: str | None,
    pip_wheel: Path | None,
    env_name: str | None,
    cache_dir: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Write an equivalent Dockerfile + context (pip --require-hashes --no-deps) for LOCK."""
    from envctl.services.build.render import render_dockerfile

    result = render_dockerfile(
        lock, directory, from_image, _cache(cache_dir), pip_wheel, env_name, force=force
    )
    cli_output.render(
        result.to_dict(),
        ok=True,
        as_json=as_json,
        show=lambda: _print_render(result),
    )


def _print_render(result: RenderResult) -> None:
    cli_output.stdout.print(
        f"wrote {result.dockerfile} ({result.packages} packages, FROM {result.from_image})", highlight=False
    )
    if result.python_from == "conda":
        cli_output.stdout.print("python: the lock's conda python (linked into conda/)", highlight=False)
    md5_only = result.verified.get("md5_only") or []
    if md5_only:
        cli_output.stdout.print(
            f"{len(md5_only)} files verified by md5 only (the lock has no sha256 for them): "
            + ", ".join(md5_only[:5])
            + (", ..." if len(md5_only) > 5 else ""),
            highlight=False,
            markup=False,
        )
