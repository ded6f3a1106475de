"""``envctl build`` and ``envctl render``: thin commands over envctl.services.build.build / render."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from envctl.cli import output as cli_output

if TYPE_CHECKING:
    from envctl.adapters.blob_cache import BlobCache
    from envctl.core.progress import Progress
    from envctl.services.build.build import BuildResult

DEFAULT_BASE = "base:debian-bookworm-python"


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
@click.argument("lock", type=click.Path(path_type=Path))
@click.option("--platform", default="linux/amd64", show_default=True)
@click.option(
    "--base",
    default=DEFAULT_BASE,
    show_default=True,
    help="oci:DIR[:TAG], docker-archive:FILE, docker:NAME, base:NAME or HOST/REPO:TAG",
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
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def build(
    lock: Path,
    platform: str,
    base: str,
    output: Path | None,
    docker_archive: Path | None,
    load: bool,
    tag: str | None,
    env_name: str | None,
    insecure_registry: bool,
    builder: str,
    cache_dir: Path | None,
    as_json: bool,
) -> None:
    """Build a layered, reproducible OCI image from LOCK, without a Docker daemon."""
    cache = _cache(cache_dir)
    if builder == "docker":
        from envctl.services.build.render import build_with_docker

        if output is not None or docker_archive is not None:
            # the docker builder's result lives in the engine; say so rather than ignore it
            raise click.UsageError("--builder docker writes into the engine: drop -o/--docker-archive")

        image_tag = tag or f"envctl/{env_name or 'env'}:docker"
        image_id = build_with_docker(lock, base, image_tag, cache)
        cli_output.render(
            {"schema": "envctl.build-docker/1", "image_id": image_id, "tag": image_tag},
            ok=True,
            as_json=as_json,
            show=lambda: cli_output.stdout.print(f"built {image_tag} ({image_id}) with docker build"),
        )
        return
    if output is None and docker_archive is None and not load:
        output = Path(f"{lock.stem}.oci")
    from envctl.cli.progress import reporter

    progress, shown = reporter("build", as_json)
    with shown:
        result = _build(
            lock,
            base,
            platform,
            output,
            docker_archive,
            load,
            tag,
            env_name,
            insecure_registry,
            cache,
            progress,
        )
    cli_output.render(result.to_dict(), ok=True, as_json=as_json, show=lambda: _print_result(result))


def _build(
    lock: Path,
    base: str,
    platform: str,
    output: Path | None,
    docker_archive: Path | None,
    load: bool,
    tag: str | None,
    env_name: str | None,
    insecure_registry: bool,
    cache: BlobCache,
    progress: Progress,
) -> BuildResult:
    from envctl.services.build.build import BuildOptions, build_image

    return build_image(
        BuildOptions(
            lock=lock,
            base=base,
            platform=platform,
            output=output,
            docker_archive=docker_archive,
            load=load,
            tag=tag,
            env_name=env_name,
            insecure_registry=insecure_registry,
            cache_root=cache.root,
        ),
        cache,
        progress=progress,
    )


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
    default="envctl-base/debian-bookworm-python:latest",
    show_default=True,
    help="The FROM image (as the Docker engine names it).",
)
@click.option("--pip-wheel", type=click.Path(path_type=Path), help="pip wheel to vendor.")
@click.option("--name", "env_name", help="Environment name (default: the lock's profile).")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Default $ENVCTL_CACHE.")
@click.option("--json", "as_json", is_flag=True)
def render(
    lock: Path,
    directory: Path,
    from_image: str,
    pip_wheel: Path | None,
    env_name: str | None,
    cache_dir: Path | None,
    as_json: bool,
) -> None:
    """Write an equivalent Dockerfile + context (pip --require-hashes --no-deps) for LOCK."""
    from envctl.services.build.render import render_dockerfile

    result = render_dockerfile(lock, directory, from_image, _cache(cache_dir), pip_wheel, env_name)
    cli_output.render(
        result.to_dict(),
        ok=True,
        as_json=as_json,
        show=lambda: cli_output.stdout.print(
            f"wrote {result.dockerfile} ({result.packages} packages, FROM {from_image})"
        ),
    )
