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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

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
    image_index,
    image_manifest,
    manifest_annotations,
    sha256_digest,
)
from envctl.core.image_needs import needs_labels, needs_of
from envctl.core.layers import LayerPlan, plan_layers
from envctl.core.lock import LockedEnv, LockEntry, locked_env
from envctl.core.matrix import Matrix
from envctl.core.names import decimal, reference_parts, valid_name
from envctl.core.progress import NullProgress, Progress
from envctl.core.sbom import spdx_document
from envctl.errors import BuildError, EnvctlError, InputError
from envctl.services.build.layer_builder import BuiltLayer, build_package_layer, build_tree_layer

RESULT_SCHEMA = "envctl.build/1"


#: the base of a lock whose profile names no ``base_image`` (built by ``envctl base build``)
DEFAULT_BASE = "base:debian-bookworm-python"


@dataclass(frozen=True)
class BuildOptions:
    lock: Path
    base: str | None  # None: the lock's base_image (the profile's), else DEFAULT_BASE
    platform: str = "linux/amd64"
    output: Path | None = None  # OCI layout directory
    docker_archive: Path | None = None
    load: bool = False
    tag: str | None = None
    env_name: str | None = None
    insecure_registry: bool = False
    cache_root: Path | None = None
    workers: int = 4
    force: bool = False  # write -o / --docker-archive over what envctl did not make
    platform_bases: tuple[tuple[str, str], ...] = ()  # (platform, ref): that platform's --base


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
class Verified:
    """How the files of a build were checked: by sha256, or by md5 where the lock has only that."""

    by_sha256: int
    md5_only: tuple[str, ...] = ()  # "name version" of each file checked by md5 alone

    def to_dict(self) -> dict[str, Any]:
        """JSON form (``verified`` in ``envctl.build/1`` and ``envctl.render/1``)."""
        return {"by_sha256": self.by_sha256, "by_md5": len(self.md5_only), "md5_only": list(self.md5_only)}

    def summary(self) -> str:
        """One line for the text output."""
        total = self.by_sha256 + len(self.md5_only)
        if not self.md5_only:
            return f"verified {total} files by sha256"
        shown = ", ".join(self.md5_only[:5]) + (", ..." if len(self.md5_only) > 5 else "")
        return (
            f"verified {total} files: {self.by_sha256} by sha256, {len(self.md5_only)} by md5 only "
            f"(the lock has no sha256 for them: {shown})"
        )


@dataclass(frozen=True)
class Fetched:
    """Every file of an environment, downloaded and verified."""

    env: LockedEnv  # every file with its sha256 (computed from the download where the lock had md5 only)
    files: dict[LockEntry, Path]  # entry of ``env`` -> its blob in the cache
    verified: Verified


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
    python_from: str = "base"  # "base": a venv on the base's Python; "conda": the lock's python
    verified: Verified = field(default_factory=lambda: Verified(0))
    platform: str = "linux/amd64"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, schema ``envctl.build/1``."""
        return {
            "schema": RESULT_SCHEMA,
            "platform": self.platform,
            "image_digest": self.image_digest,
            "config_digest": self.config_digest,
            "tag": self.tag,
            "env": {
                "name": self.env_name,
                "prefix": self.env_prefix,
                "python": self.python,
                "python_from": self.python_from,
            },
            "verified": self.verified.to_dict(),
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


def source_date_epoch() -> int:
    """``$SOURCE_DATE_EPOCH`` (the reproducible-builds convention), else 0.

    The fixed time of an image whose lock records no exclude-newer time (one conda-lock wrote).
    """
    value = decimal(os.environ.get("SOURCE_DATE_EPOCH", "").strip(), 12)
    return 0 if value is None else value


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


#: the default base of each platform (``envctl base build`` makes them from images/)
DEFAULT_BASES = {"linux/amd64": DEFAULT_BASE, "linux/arm64": f"{DEFAULT_BASE}-arm64"}


def base_for(env: LockedEnv, option: str | None, platform: str = "linux/amd64") -> str:
    """The base to build on: ``--base``, else the profile's ``base_image``, else the platform's
    default (DEFAULT_BASES)."""
    return option or env.base_image or DEFAULT_BASES.get(platform, DEFAULT_BASE)


def fetch_all(env: LockedEnv, cache: BlobCache, workers: int, progress: Progress | None = None) -> Fetched:
    """Every file of ``env`` from the cache, downloaded and verified first.

    By sha256; a file the lock pins by md5 alone (older conda-lock) is checked by md5 and then
    known by the sha256 of its bytes, so layers, SBOM and cache treat it like any other. Each
    download reports its bytes to ``progress`` (files already cached report nothing).
    """
    if progress is not None:
        from envctl.adapters.progress_io import CountingDownloader

        cache = BlobCache(cache.root, CountingDownloader(cache.downloader, progress))

    def one(entry: LockEntry) -> tuple[Path, str]:
        what = f"{entry.name} {entry.version}"
        if entry.sha256:
            return cache.fetch(entry.url, entry.sha256, what), entry.sha256
        assert entry.md5 is not None  # locked_env lets no file through without one of the two
        return cache.fetch_md5(entry.url, entry.md5, what)

    # Every file is verified before any layer is built: a bad hash stops the build early.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(one, env.files))
    md5_only = tuple(f"{f.name} {f.version}" for f in env.files if not f.sha256)
    complete = env.with_sha256({f: sha256 for f, (_, sha256) in zip(env.files, results, strict=True)})
    files = {f: path for f, (path, _) in zip(complete.files, results, strict=True)}
    return Fetched(complete, files, Verified(len(env.files) - len(md5_only), md5_only))


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
    outputs = _write_outputs(options, cache, blobs, config, manifest, index, tag, epoch)
    timings["write"] = time.monotonic() - started
    loaded: tuple[str, ...] = ()
    if options.load:
        progress.phase("load into the Docker engine")
        loaded = _load(options, cache, parts, blobs, config, manifest, index, tag, epoch)
        timings["load"] = time.monotonic() - started - timings["write"]
    timings["total"] = timings["total"] + time.monotonic() - started
    return replace(image.result, outputs=outputs, loaded=loaded, timings=timings)


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
