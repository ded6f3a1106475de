"""``envctl pack``: a thin command over envctl.services.pack.pack."""

from __future__ import annotations

from pathlib import Path

import click

from envctl.cli import output as cli_output


@click.command()
@click.argument("source", metavar="LOCK|IMAGE", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="The archive to write.")
@click.option(
    "--format",
    "archive_format",
    type=click.Choice(["tar.gz", "zip", "squashfs"]),
    default="tar.gz",
    show_default=True,
)
@click.option("--base", help="Building from LOCK: the base, as `envctl build --base`.")
@click.option("--name", "env_name", help="Building from LOCK: the environment name (default: the lock's).")
@click.option("--cache-dir", type=click.Path(path_type=Path), help="Default $ENVCTL_CACHE.")
@click.option("--force", is_flag=True, help="Replace an existing file envctl did not write.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pack(
    source: Path,
    output: Path,
    archive_format: str,
    base: str | None,
    env_name: str | None,
    cache_dir: Path | None,
    force: bool,
    as_json: bool,
) -> None:
    """Write LOCK's environment (or IMAGE's, an OCI layout) as a relocatable archive that carries
    its own interpreter: for `spark-submit --archives`, Ray's runtime_env or Slurm's sbcast."""
    from envctl.adapters.blob_cache import BlobCache, default_cache_root
    from envctl.services.pack.pack import PackOptions
    from envctl.services.pack.pack import pack as pack_env

    result = pack_env(
        PackOptions(source, output, archive_format, base=base, env_name=env_name, force=force),
        BlobCache(cache_dir or default_cache_root()),
    )

    def show() -> None:
        cli_output.stdout.print(
            f"packed {result.env_name} (python {result.python}, {result.kind}) into {result.output}: "
            f"{result.format}, {result.size / 1e6:.1f} MB, {result.files} entries, sha256:{result.sha256} "
            f"in {result.seconds:.1f}s"
        )

    cli_output.render(result.to_dict(), ok=True, as_json=as_json, show=show)
