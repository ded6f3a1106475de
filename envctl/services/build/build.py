"""``envctl build``: a locked environment + a base image -> a layered, reproducible OCI image.

Order matters for failing early and cleanly: read the lock, resolve the base and check its Python
(before any download), fetch and verify every file, build the layers that are not cached, and
only then write the outputs, each atomically.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envctl import __version__
from envctl.adapters.blob_cache import BlobCache
from envctl.core.build_parts import BuildParts
from envctl.core.image import (
    MEDIA_LAYER_GZIP,
    PLATFORMS,
    ImageFacts,
    Layer,
    canonical_json,
    image_config,
    image_index,
    image_manifest,
    manifest_annotations,
    sha256_digest,
)
from envctl.core.layers import LayerPlan, plan_layers
from envctl.core.lock import LockedEnv, LockEntry, locked_env
from envctl.core.progress import NullProgress, Progress
from envctl.core.sbom import spdx_document
from envctl.errors import BuildError, InputError
from envctl.services.build.layer_builder import BuiltLayer, build_package_layer, build_tree_layer

RESULT_SCHEMA = "envctl.build/1"


@dataclass(frozen=True)
class BuildOptions:
    lock: Path
    base: str
    platform: str = "linux/amd64"
    output: Path | None = None  # OCI layout directory
    docker_archive: Path | None = None
    load: bool = False
    tag: str | None = None
    env_name: str | None = None
    insecure_registry: bool = False
    cache_root: Path | None = None
    workers: int = 4


@dataclass(frozen=True)
class LayerReport:
    kind: str
    name: str
    contents: str
    digest: str
    diff_id: str
    size: int
    unpacked: int
    files: int
    reused: bool


@dataclass(frozen=True)
class BuildResult:
    image_digest: str  # digest of the manifest: what a registry or node names the image by
    config_digest: str
    tag: str
    env_name: str
    env_prefix: str
    python: str
    base: str
    base_layers: int
    base_size: int
    layers: tuple[LayerReport, ...]
    outputs: dict[str, str]
    loaded: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, schema ``envctl.build/1``."""
        return {
            "schema": RESULT_SCHEMA,
            "image_digest": self.image_digest,
            "config_digest": self.config_digest,
            "tag": self.tag,
            "env": {"name": self.env_name, "prefix": self.env_prefix, "python": self.python},
            "base": {"ref": self.base, "layers": self.base_layers, "size": self.base_size},
            "layers": [layer.__dict__ for layer in self.layers],
            "size": {
                "base": self.base_size,
                "envctl": sum(layer.size for layer in self.layers),
                "built": sum(layer.size for layer in self.layers if not layer.reused),
            },
            "outputs": self.outputs,
            "loaded": list(self.loaded),
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }


def rfc3339(epoch: int) -> str:
    """``epoch`` as an RFC 3339 UTC time (the image's ``created``)."""
    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _metadata_tree(
    env: LockedEnv, prefix: str, python_exe: str, python: str, name: str, created: str
) -> dict[str, bytes | str]:
    home = python_exe.rsplit("/", 1)[0]
    sbom = canonical_json(spdx_document(env, name, created, __version__)) + b"\n"
    return {
        f"{prefix}/pyvenv.cfg": (
            f"home = {home}\ninclude-system-site-packages = false\nversion = {python}\n"
            f"executable = {python_exe}\nprompt = {name}\n"
        ).encode(),
        f"{prefix}/bin/python": f"->{python_exe}",
        f"{prefix}/bin/python3": "->python",
        f"{prefix}/bin/python{python}": "->python",
        f"{prefix}/lib/python{python}/site-packages/": b"",
        f"{prefix}/envctl/conda-lock.yml": Path(env.path).read_bytes(),
        f"{prefix}/envctl/sbom.spdx.json": sbom,
    }


def source_date_epoch() -> int:
    """``$SOURCE_DATE_EPOCH`` (the reproducible-builds convention), else 0.

    The fixed time of an image whose lock records no exclude-newer time (one conda-lock wrote).
    """
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(value) if value.isdigit() else 0


def read_environment(lock: Path, subdir: str) -> LockedEnv:
    """The platform ``subdir`` of the lock at ``lock``, through the one lock reader."""
    from envctl.adapters.lockfile import read_lock

    return locked_env(read_lock(lock), subdir, source=str(lock), fallback_epoch=source_date_epoch())


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


def fetch_all(
    env: LockedEnv, cache: BlobCache, workers: int, progress: Progress | None = None
) -> dict[LockEntry, Path]:
    """Every file of ``env`` from the cache (downloaded and verified first): entry -> path.

    Each download reports its bytes to ``progress`` (files already cached report nothing).
    """
    if progress is not None:
        from envctl.adapters.progress_io import CountingDownloader

        cache = BlobCache(cache.root, CountingDownloader(cache.downloader, progress))
    # Every file is verified before any layer is built: a bad hash stops the build early.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        paths = list(
            pool.map(
                lambda f: cache.fetch(f.url, f.sha256, f"{f.name} {f.version}"),
                env.files,
            )
        )
    return dict(zip(env.files, paths, strict=True))


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
    from envctl.services.build.base_source import python_for

    timings: dict[str, float] = {}
    started = last = time.monotonic()

    def lap(name: str) -> None:
        nonlocal last
        now = time.monotonic()
        timings[name] = now - last
        last = now

    if options.platform not in PLATFORMS:
        raise InputError(
            f"--platform {options.platform}: not supported",
            hint="one of: " + ", ".join(sorted(PLATFORMS)),
        )
    subdir, architecture = PLATFORMS[options.platform]
    progress.phase(f"read {options.lock}")
    env = read_environment(options.lock, subdir)
    if any(f.manager == "conda" and f.name == "python" for f in env.files):
        raise BuildError(
            f"{options.lock}: a conda python is not supported by the daemonless builder",
            hint="the base image provides Python; lock conda libraries without python",
        )
    lap("read_lock")
    progress.phase(f"base {options.base}")
    base = parts.bases.resolve(options.base, architecture)
    base_python = python_for(base, cache, env.python)
    lap("base")
    missing = sum(1 for f in env.files if not (f.sha256 and cache.has(f.sha256)))
    progress.phase(f"fetch {len(env.files)} files ({missing} to download)")
    files = fetch_all(env, cache, options.workers, progress)
    lap("fetch")

    name = env.env_name(options.env_name)
    prefix = env.env_prefix(options.env_name)
    created = rfc3339(env.epoch)
    plans = plan_layers(env.files)
    metadata = _metadata_tree(env, prefix, base_python.executable, env.python, name, created)

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
    index = image_index(image_digest, len(manifest), tag.rsplit(":", 1)[-1])
    blobs = [layer.digest for layer in (*base.layers, *layers)]
    progress.phase("write " + ", ".join(str(p) for p in (options.output, options.docker_archive) if p))
    outputs = _write_outputs(options, cache, blobs, config, manifest, index, tag, env.epoch)
    lap("write")
    loaded: tuple[str, ...] = ()
    if options.load:
        progress.phase("load into the Docker engine")
        loaded = _load(options, cache, parts, blobs, config, manifest, index, tag, env.epoch)
        lap("load")
    timings["total"] = time.monotonic() - started
    return BuildResult(
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
        outputs=outputs,
        loaded=loaded,
        timings=timings,
    )


def _archive_documents(config: bytes, manifest: bytes, index: dict[str, Any]) -> dict[str, bytes]:
    return {
        "oci-layout": canonical_json({"imageLayoutVersion": "1.0.0"}),
        "index.json": canonical_json(index),
        **{f"blobs/sha256/{sha256_digest(d).split(':')[1]}": d for d in (config, manifest)},
    }


def _write_outputs(
    options: BuildOptions,
    cache: BlobCache,
    blobs: list[str],
    config: bytes,
    manifest: bytes,
    index: dict[str, Any],
    tag: str,
    epoch: int,
) -> dict[str, str]:
    from envctl.adapters import docker_archive, oci_layout

    outputs: dict[str, str] = {}
    if options.output is not None:
        # each blob once: a base that envctl built from the same lock holds the very same layers
        unique = list(dict.fromkeys(blobs))
        oci_layout.write_layout(options.output, cache, unique, [config, manifest], index)
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
        )
        outputs["docker_archive"] = str(options.docker_archive)
    return outputs


def _load(
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
