"""``envctl build --fleet conda-lock.fleet.toml``: one image per variant of a fleet lock.

Each variant's lock is built as ``envctl build LOCK`` builds it (one platform, or a multi-platform
index), into ``-o DIR``/VARIANT or beside the lock (``adapters.fleet_index.variant_layout``), where
``push --fleet`` finds it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from envctl.adapters.blob_cache import BlobCache
from envctl.core.progress import NullProgress, Progress
from envctl.errors import InputError
from envctl.services.build.build import build_image
from envctl.services.build.model import BuildOptions, BuildResult
from envctl.services.build.multi import IndexBuildResult, build_index

FLEET_SCHEMA = "envctl.build-fleet/1"


@dataclass(frozen=True)
class FleetBuildResult:
    """Each variant's build, by variant name."""

    index: str
    variants: dict[str, BuildResult | IndexBuildResult]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, schema ``envctl.build-fleet/1``."""
        return {
            "schema": FLEET_SCHEMA,
            "index": self.index,
            "variants": {name: result.to_dict() for name, result in self.variants.items()},
        }


def build_fleet(
    index: Path,
    options: BuildOptions,
    platforms: tuple[str, ...],
    cache: BlobCache,
    progress: Progress | None = None,
) -> FleetBuildResult:
    """Build every variant of the fleet lock ``index``; ``options.lock`` and ``output`` are set per
    variant (``options.output`` is the parent directory of the variants' layouts, or None)."""
    from envctl.adapters.fleet_index import read_index, variant_layout

    report = progress or NullProgress()
    if options.docker_archive is not None or options.load:
        raise InputError("--fleet writes OCI layouts only", hint="drop --docker-archive / --load")
    if options.tag is not None:
        raise InputError("--fleet: the variants' images get their own tags", hint="drop --tag")
    variants = read_index(index)
    jobs = []
    for variant in variants:
        lock = index.parent / variant.lock
        if not lock.is_file():
            raise InputError(
                f"{index}: variant {variant.name}: no lock {lock}", hint="lock again: envctl lock -i"
            )
        jobs.append((variant, lock, variant_layout(index, variant, options.output)))
    if options.output is not None:
        options.output.mkdir(parents=True, exist_ok=True)
    built: dict[str, BuildResult | IndexBuildResult] = {}
    for variant, lock, layout in jobs:
        report.phase(f"variant {variant.name}")
        one = replace(options, lock=lock, output=layout)
        if len(platforms) > 1:
            built[variant.name] = build_index(one, platforms, cache, progress=report)
        else:
            built[variant.name] = build_image(replace(one, platform=platforms[0]), cache, progress=report)
    return FleetBuildResult(str(index), built)
