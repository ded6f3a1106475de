"""One platform's image, assembled in the cache: the lock read, the base resolved, the files
fetched, the layers planned (``core.layers``) and built (``layer_builder``, in parallel, cached
ones reused), then the config and manifest. Nothing is written outside the cache here.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from envctl import __version__
from envctl.adapters.blob_cache import BlobCache
from envctl.core.build_parts import BuildParts
from envctl.core.image import (
    MEDIA_LAYER_GZIP,
    PLATFORMS,
    BaseImage,
    ImageFacts,
    Layer,
    canonical_json,
    image_config,
    image_manifest,
    manifest_annotations,
    sha256_digest,
)
from envctl.core.image_needs import needs_labels, needs_of
from envctl.core.layers import LayerPlan, plan_layers
from envctl.core.lock import LockedEnv
from envctl.core.matrix import Matrix
from envctl.core.progress import Progress
from envctl.core.sbom import spdx_document
from envctl.errors import EnvctlError, InputError
from envctl.services.build.inputs import base_for, fetch_all, read_environment, rfc3339
from envctl.services.build.layer_builder import BuiltLayer, build_package_layer, build_tree_layer
from envctl.services.build.model import BuildOptions, BuildResult, LayerReport


@dataclass(frozen=True)
class Assembled:
    """One platform's image, every blob in the cache, nothing written yet."""

    result: BuildResult  # outputs and loaded still empty
    config: bytes
    manifest: bytes
    blobs: list[str]  # base layers, then envctl's
    epoch: int


def assemble(
    options: BuildOptions, platform: str, cache: BlobCache, parts: BuildParts, progress: Progress
) -> Assembled:
    """Build ``platform``'s image of ``options.lock`` into the cache (layers, config, manifest)."""
    from envctl.services.build.base_source import python_for

    timings: dict[str, float] = {}
    started = last = time.monotonic()

    def lap(name: str) -> None:
        nonlocal last
        now = time.monotonic()
        timings[name] = now - last
        last = now

    if platform not in PLATFORMS:
        raise InputError(
            f"--platform {platform}: not supported",
            hint="one of: " + ", ".join(sorted(PLATFORMS)),
        )
    subdir, architecture = PLATFORMS[platform]
    progress.phase(f"read {options.lock}" + ("" if platform == "linux/amd64" else f" ({subdir})"))
    env = read_environment(options.lock, subdir)
    name = env.env_name(options.env_name)  # checked before anything is fetched or built
    env.require_wheels()
    lap("read_lock")
    base_ref = base_for(env, dict(options.platform_bases).get(platform, options.base), platform)
    progress.phase(f"base {base_ref}")
    base = parts.bases.resolve(base_ref, architecture)
    # A conda python is the interpreter: the base needs none. Otherwise the env is a venv on
    # the base's Python, which must be the lock's.
    conda_python = env.conda_python is not None
    base_exe = None if conda_python else python_for(base, cache, env.python).executable
    lap("base")
    missing = sum(1 for f in env.files if not (f.sha256 and cache.has(f.sha256)))
    progress.phase(f"fetch {len(env.files)} files ({missing} to download)")
    fetched = fetch_all(env, cache, options.workers, progress)
    env, files = fetched.env, fetched.files
    lap("fetch")

    prefix = env.env_prefix(options.env_name)
    created = rfc3339(env.epoch)
    plans = plan_layers(env.files)
    metadata = _metadata_tree(env, prefix, base_exe, env.python, name, created)

    def build_one(plan: LayerPlan) -> BuiltLayer:
        item = f"layer {plan.name}"
        progress.item_started(item)
        try:
            if plan.kind == "metadata":
                layer = build_tree_layer(plan, cache, metadata, env.epoch)
            else:
                layer = build_package_layer(
                    plan, cache, files, prefix, env.python, env.epoch, parts.installers
                )
        except BaseException:
            progress.item_finished(item, "failed")
            raise
        how = "cached" if layer.reused else f"built, {layer.blob.files} files"
        progress.item_finished(item, f"{how}, {layer.blob.size / 1e6:.1f} MB")
        return layer

    progress.phase(f"{len(plans)} layers")
    with ThreadPoolExecutor(max_workers=max(1, min(options.workers, os.cpu_count() or 1))) as pool:
        built = list(pool.map(build_one, plans))
    lap("layers")

    facts = ImageFacts(
        env_name=name,
        env_prefix=prefix,
        python=env.python,
        lock_hash=env.content_hash or sha256_digest(Path(env.path).read_bytes()),
        created=created,
        cuda=env.cuda,
        min_driver=env.min_driver,
        frameworks=env.frameworks,
        base_ref=base.ref,
        base_digest=base.manifest_digest,
        conda_python=conda_python,
        extra_labels=needs_labels(
            needs_of(
                env,
                _matrix() if env.cuda else None,
                architecture,
                sum(b.blob.unpacked for b in built) + base_bytes(base),
            )
        ),
    )
    layers = tuple(
        Layer(
            digest=b.blob.digest,
            diff_id=b.blob.diff_id,
            size=b.blob.size,
            media_type=MEDIA_LAYER_GZIP,
            created_by=f"envctl {b.plan.kind}: {b.plan.summary()}",
        )
        for b in built
    )
    config = canonical_json(image_config(base.config, base.layers, layers, facts, architecture))
    config_digest = sha256_digest(config)
    manifest = canonical_json(
        image_manifest(config_digest, len(config), (*base.layers, *layers), manifest_annotations(facts))
    )
    image_digest = sha256_digest(manifest)
    tag = options.tag or f"envctl/{name}:{facts.lock_hash.split(':')[-1][:12]}"
    blobs = [layer.digest for layer in (*base.layers, *layers)]
    timings["total"] = time.monotonic() - started
    result = BuildResult(
        image_digest=image_digest,
        config_digest=config_digest,
        tag=tag,
        env_name=name,
        env_prefix=prefix,
        python=env.python,
        base=base.ref,
        base_layers=len(base.layers),
        base_size=sum(layer.size for layer in base.layers),
        layers=tuple(
            LayerReport(
                kind=b.plan.kind,
                name=b.plan.name,
                contents=b.plan.summary(),
                digest=b.blob.digest,
                diff_id=b.blob.diff_id,
                size=b.blob.size,
                unpacked=b.blob.unpacked,
                files=b.blob.files,
                reused=b.reused,
            )
            for b in built
        ),
        outputs={},
        loaded=(),
        timings=timings,
        python_from="conda" if conda_python else "base",
        verified=fetched.verified,
        platform=platform,
    )
    return Assembled(result, config, manifest, blobs, env.epoch)


def _metadata_tree(
    env: LockedEnv, prefix: str, python_exe: str | None, python: str, name: str, created: str
) -> dict[str, bytes | str]:
    """The top layer: the lock, the SBOM and, on a base's Python (``python_exe``), the venv.

    A conda python (``python_exe`` None) brings its own bin/python* and site-packages: the
    prefix is a conda environment, not a venv.
    """
    sbom = canonical_json(spdx_document(env, name, created, __version__)) + b"\n"
    tree: dict[str, bytes | str] = {
        f"{prefix}/envctl/conda-lock.yml": Path(env.path).read_bytes(),
        f"{prefix}/envctl/sbom.spdx.json": sbom,
    }
    if python_exe is not None:
        home = python_exe.rsplit("/", 1)[0]
        tree |= {
            f"{prefix}/pyvenv.cfg": (
                f"home = {home}\ninclude-system-site-packages = false\nversion = {python}\n"
                f"executable = {python_exe}\nprompt = {name}\n"
            ).encode(),
            f"{prefix}/bin/python": f"->{python_exe}",
            f"{prefix}/bin/python3": "->python",
            f"{prefix}/bin/python{python}": "->python",
            f"{prefix}/lib/python{python}/site-packages/": b"",
        }
    return tree


def _matrix() -> Matrix | None:
    """The compatibility matrix, for the GPU architectures the image records; None if unreadable."""
    from envctl.adapters.matrix_files import load_matrix

    try:
        return load_matrix()
    except EnvctlError:
        return None


def base_bytes(base: BaseImage) -> int:
    """The base's layers as stored: its unpacked size is not recorded, and a node keeps them too."""
    return sum(layer.size for layer in base.layers)
