"""``envctl build``: a locked environment + a base image -> a layered, reproducible OCI image.

Order matters for failing early and cleanly: read the lock, resolve the base and check its Python
(before any download), fetch and verify every file, build the layers that are not cached, and
only then write the outputs, each atomically.

This module is the orchestration; the parts are ``model`` (options and result), ``inputs`` (the
lock, the base and the verified files), ``assemble`` (one platform's layers, config and manifest
in the cache) and ``write`` (the outputs and the load).
"""

from __future__ import annotations

import time
from dataclasses import replace

from envctl.adapters.blob_cache import BlobCache
from envctl.core.build_parts import BuildParts
from envctl.core.image import image_index
from envctl.core.names import reference_parts, valid_name
from envctl.core.progress import NullProgress, Progress
from envctl.services.build.assemble import assemble
from envctl.services.build.model import BuildOptions, BuildResult
from envctl.services.build.write import check_outputs, load_image, write_outputs


def default_parts(cache: BlobCache, insecure_registry: bool = False) -> BuildParts:
    """The real parts: bases from layouts, archives, engines and registries; pypa/installer for
    wheels, rattler for conda packages; the local Docker engine for ``--load``."""
    from envctl.adapters.conda_install import CondaInstaller
    from envctl.adapters.docker_engine import EngineLoader
    from envctl.adapters.wheel_install import WheelInstaller
    from envctl.services.build.base_source import BaseSource

    return BuildParts(
        bases=BaseSource(cache, insecure_registry),
        installers={"pip": WheelInstaller(), "conda": CondaInstaller(cache.root / "tmp")},
        loader=EngineLoader(),
    )


def build_image(
    options: BuildOptions,
    cache: BlobCache,
    parts: BuildParts | None = None,
    progress: Progress | None = None,
) -> BuildResult:
    """Build the image; raises BuildError/LockError/InputError with nothing half-written.

    ``parts`` default to the real ones (``default_parts``). Every build, failed or not, goes
    into the ledger (`envctl history`).
    """
    from envctl.adapters import ledger

    with ledger.recording("build", str(options.lock)) as entry:
        result = _build_image(
            options,
            cache,
            parts or default_parts(cache, options.insecure_registry),
            progress or NullProgress(),
        )
        entry.update(
            subject=result.image_digest, tag=result.tag, lock=str(options.lock), outputs=result.outputs
        )
        return result


def _build_image(
    options: BuildOptions, cache: BlobCache, parts: BuildParts, progress: Progress
) -> BuildResult:
    if options.tag is not None:
        valid_name("tag", options.tag, "--tag")
    check_outputs(options, cache)
    image = assemble(options, options.platform, cache, parts, progress)
    started = time.monotonic()
    config, manifest, blobs = image.config, image.manifest, image.blobs
    index = image_index(image.result.image_digest, len(manifest), reference_parts(image.result.tag)[1])
    tag, epoch, timings = image.result.tag, image.epoch, dict(image.result.timings)
    progress.phase("write " + ", ".join(str(p) for p in (options.output, options.docker_archive) if p))
    outputs = write_outputs(options, cache, blobs, config, manifest, index, tag, epoch)
    timings["write"] = time.monotonic() - started
    loaded: tuple[str, ...] = ()
    if options.load:
        progress.phase("load into the Docker engine")
        loaded = load_image(options, cache, parts, blobs, config, manifest, index, tag, epoch)
        timings["load"] = time.monotonic() - started - timings["write"]
    timings["total"] = timings["total"] + time.monotonic() - started
    return replace(image.result, outputs=outputs, loaded=loaded, timings=timings)
