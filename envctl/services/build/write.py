"""A built image written out: the OCI layout (``-o``), the docker archive (``--docker-archive``)
and the load into the Docker engine (``--load``), each atomically through the adapters; and the
check, before any work, that envctl may write those outputs at all.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from envctl.adapters.blob_cache import BlobCache
from envctl.core.build_parts import BuildParts
from envctl.core.image import canonical_json, sha256_digest
from envctl.errors import BuildError, InputError
from envctl.services.build.model import BuildOptions


def check_outputs(options: BuildOptions, cache: BlobCache) -> None:
    """Refuse outputs envctl may not write before any work (see ``adapters.outputs``)."""
    from envctl.adapters import outputs

    if options.output is not None:
        layout = outputs.check_dir_target(options.output, outputs.OCI_LAYOUT, force=options.force)
        cache_root = Path(os.path.realpath(cache.root))
        if layout == cache_root or cache_root in layout.parents:
            raise InputError(
                f"-o {options.output}: lies inside the cache {cache.root}",
                hint="write the image outside the cache ($ENVCTL_CACHE)",
            )
    if options.docker_archive is not None:
        outputs.check_file_target(
            options.docker_archive, outputs.DOCKER_ARCHIVE, force=options.force, option="--docker-archive"
        )


def _archive_documents(config: bytes, manifest: bytes, index: dict[str, Any]) -> dict[str, bytes]:
    return {
        "oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"}),
        "index.json": canonical_json(index),
        **{f"blobs/sha256/{sha256_digest(d).split(':')[1]}": d for d in (config, manifest)},
    }


def write_outputs(
    options: BuildOptions,
    cache: BlobCache,
    blobs: list[str],
    config: bytes,
    manifest: bytes,
    index: dict[str, Any],
    tag: str,
    epoch: int,
) -> dict[str, str]:
    """Write ``-o`` and ``--docker-archive`` (those asked for); returns what was written where."""
    from envctl.adapters import docker_archive, oci_layout

    outputs: dict[str, str] = {}
    if options.output is not None:
        # each blob once: a base that envctl built from the same lock holds the very same layers
        unique = list(dict.fromkeys(blobs))
        oci_layout.write_layout(options.output, cache, unique, [config, manifest], index, force=options.force)
        outputs["oci"] = str(options.output)
    if options.docker_archive is not None:
        docker_archive.write_archive(
            options.docker_archive,
            cache,
            blobs,
            _archive_documents(config, manifest, index),
            sha256_digest(config),
            tag,
            epoch,
            force=options.force,
        )
        outputs["docker_archive"] = str(options.docker_archive)
    return outputs


def load_image(
    options: BuildOptions,
    cache: BlobCache,
    parts: BuildParts,
    blobs: list[str],
    config: bytes,
    manifest: bytes,
    index: dict[str, Any],
    tag: str,
    epoch: int,
) -> tuple[str, ...]:
    """Load the image into the Docker engine (``--load``): the archive written, else a temporary one."""
    from envctl.adapters import docker_archive

    if options.docker_archive is not None:
        return tuple(parts.loader.load(options.docker_archive))
    with tempfile.TemporaryDirectory(prefix="load-", dir=cache.root) as tmp:
        archive = Path(tmp) / "image.tar"
        documents = _archive_documents(config, manifest, index)
        docker_archive.write_archive(archive, cache, blobs, documents, sha256_digest(config), tag, epoch)
        try:
            return tuple(parts.loader.load(archive))
        except BuildError as exc:
            raise BuildError(f"--load: {exc.message}", hint=exc.hint) from exc
