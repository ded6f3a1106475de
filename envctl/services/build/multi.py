"""``envctl build LOCK --platform linux/amd64,linux/arm64``: one multi-platform image.

Each platform's image is built from that platform's part of the lock (conda subdir linux-64,
linux-aarch64) on that platform's base, exactly as a one-platform build makes it; the layout then
holds an OCI image index with one manifest per platform (in PLATFORMS order, whatever order the
flag gave), which index.json names under the tag. Same lock and bases, same index digest.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from envctl.adapters.blob_cache import BlobCache
from envctl.core.build_parts import BuildParts
from envctl.core.image import (
    MEDIA_INDEX,
    PLATFORMS,
    canonical_json,
    image_index,
    platform_index,
    sha256_digest,
)
from envctl.core.names import reference_parts, valid_name
from envctl.core.progress import NullProgress, Progress
from envctl.errors import InputError
from envctl.services.build.assemble import assemble
from envctl.services.build.build import default_parts
from envctl.services.build.model import BuildOptions, BuildResult
from envctl.services.build.write import check_outputs

INDEX_SCHEMA = "envctl.build-index/1"


@dataclass(frozen=True)
class IndexBuildResult:
    """A multi-platform build: the index and each platform's build."""

    index_digest: str
    tag: str
    images: tuple[BuildResult, ...]
    outputs: dict[str, str]
    timings: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, schema ``envctl.build-index/1``."""
        return {
            "schema": INDEX_SCHEMA,
            "index_digest": self.index_digest,
            "tag": self.tag,
            "platforms": {image.platform: image.to_dict() for image in self.images},
            "outputs": self.outputs,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


def parse_platforms(values: tuple[str, ...]) -> tuple[str, ...]:
    """``--platform`` values (repeatable, comma separated) -> the platforms in PLATFORMS order.

    InputError naming the value for an unknown or repeated platform.
    """
    given = [p.strip() for value in values for p in value.split(",") if p.strip()]
    for platform in given:
        if platform not in PLATFORMS:
            raise InputError(
                f"--platform {platform[:40]}: not supported", hint="one of: " + ", ".join(PLATFORMS)
            )
    if len(set(given)) != len(given):
        raise InputError(f"--platform {','.join(given)}: a platform is named twice")
    return tuple(p for p in PLATFORMS if p in given) or ("linux/amd64",)


def parse_bases(values: tuple[str, ...], platforms: tuple[str, ...]) -> tuple[str | None, dict[str, str]]:
    """``--base`` values: one REF for every platform and/or ``PLATFORM=REF`` for one."""
    common: str | None = None
    per: dict[str, str] = {}
    for value in values:
        head, sep, ref = value.partition("=")
        if sep and head in PLATFORMS:
            if head not in platforms:
                raise InputError(f"--base {value[:80]}: {head} is not built", hint="add it to --platform")
            if head in per or not ref:
                raise InputError(f"--base {value[:80]}: expected one PLATFORM=REF per platform")
            per[head] = ref
        elif common is not None:
            raise InputError(
                f"--base {value[:80]}: a second base for every platform", hint="use PLATFORM=REF"
            )
        else:
            common = value
    return common, per


def build_index(
    options: BuildOptions,
    platforms: tuple[str, ...],
    cache: BlobCache,
    parts: BuildParts | None = None,
    progress: Progress | None = None,
) -> IndexBuildResult:
    """Build every platform's image of ``options.lock`` and write one layout with their index."""
    from envctl.adapters import ledger

    with ledger.recording("build", str(options.lock)) as entry:
        result = _build_index(
            options,
            platforms,
            cache,
            parts or default_parts(cache, options.insecure_registry),
            progress or NullProgress(),
        )
        entry.update(
            subject=result.index_digest,
            tag=result.tag,
            lock=str(options.lock),
            outputs=result.outputs,
            platforms={i.platform: i.image_digest for i in result.images},
        )
        return result


def _build_index(
    options: BuildOptions, platforms: tuple[str, ...], cache: BlobCache, parts: BuildParts, progress: Progress
) -> IndexBuildResult:
    from envctl.adapters import oci_layout

    if len(platforms) < 2:
        raise InputError("a multi-platform build needs two or more --platform")
    if options.docker_archive is not None or options.load:
        raise InputError(
            "--docker-archive and --load take one platform's image",
            hint="build --platform PLATFORM --load (or --docker-archive) per platform",
        )
    if options.output is None:
        raise InputError("a multi-platform build needs -o DIR (an OCI layout)")
    if options.tag is not None:
        valid_name("tag", options.tag, "--tag")
    check_outputs(options, cache)
    started = time.monotonic()
    built = []
    for platform in platforms:
        progress.phase(f"platform {platform}")
        built.append(assemble(options, platform, cache, parts, progress))
    tags = {image.result.tag for image in built}
    if len(tags) != 1:  # the default tag is the lock's hash: one lock, one tag
        raise InputError(
            f"{options.lock}: the platforms' images got different tags: {', '.join(sorted(tags))}"
        )
    tag = tags.pop()
    index = canonical_json(
        platform_index([(i.result.image_digest, len(i.manifest), i.result.platform) for i in built])
    )
    index_digest = sha256_digest(index)
    layout_index = image_index(index_digest, len(index), reference_parts(tag)[1], MEDIA_INDEX)
    blobs = list(dict.fromkeys(digest for image in built for digest in image.blobs))
    documents = [doc for image in built for doc in (image.config, image.manifest)] + [index]
    progress.phase(f"write {options.output}")
    oci_layout.write_layout(options.output, cache, blobs, documents, layout_index, force=options.force)
    outputs = {"oci": str(options.output)}
    images = tuple(replace(i.result, outputs=outputs) for i in built)
    timings = {i.result.platform: i.result.timings["total"] for i in built}
    timings["total"] = time.monotonic() - started
    return IndexBuildResult(index_digest, tag, images, outputs, timings)
