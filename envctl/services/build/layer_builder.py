"""Build the layers of a plan: install each layer's packages into its own staging tree, then tar.

Each built layer is remembered under a key made of everything that decides its bytes (the files'
hashes, the env prefix, the Python version, the fixed mtime), so a rebuild only builds the layers
whose packages changed.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from envctl.adapters.blob_cache import BlobCache
from envctl.adapters.tarball import LayerBlob, write_layer
from envctl.core.build_parts import PackageInstaller
from envctl.core.image import canonical_json, sha256_digest
from envctl.core.layers import LayerPlan
from envctl.core.lock import LockEntry
from envctl.errors import BuildError

#: bump when the layout of a layer changes, so old cache entries are not reused
LAYER_FORMAT = 1


@dataclass(frozen=True)
class BuiltLayer:
    """A layer of the plan, built (or reused from the layer cache)."""

    plan: LayerPlan
    blob: LayerBlob
    reused: bool


def layer_key(plan: LayerPlan, prefix: str, python: str, epoch: int, extra: str = "") -> str:
    """The cache key of a layer: a digest over everything that decides its bytes."""
    return sha256_digest(
        canonical_json(
            {
                "format": LAYER_FORMAT,
                "kind": plan.kind,
                "prefix": prefix,
                "python": python,
                "epoch": epoch,
                "files": [[p.filename, p.sha256] for p in plan.packages],
                "extra": extra,
            }
        )
    ).split(":")[1]


def _remembered(cache: BlobCache, key: str) -> LayerBlob | None:
    memo = cache.root / "layers" / f"{key}.json"
    try:
        data = json.loads(memo.read_text())
        blob = LayerBlob(**data)
    except (OSError, ValueError, TypeError):
        return None
    return blob if cache.has(blob.digest.split(":")[1]) else None


def _remember(cache: BlobCache, key: str, blob: LayerBlob) -> None:
    from envctl.adapters.files import write_atomic

    write_atomic(cache.root / "layers" / f"{key}.json", json.dumps(blob.__dict__, sort_keys=True))


def build_package_layer(
    plan: LayerPlan,
    cache: BlobCache,
    files: Mapping[LockEntry, Path],
    prefix: str,
    python: str,
    epoch: int,
    installers: Mapping[str, PackageInstaller],
) -> BuiltLayer:
    """Install the plan's packages (their verified files in ``files``) and tar them.

    Each package goes through the installer of its manager (``"pip"``, ``"conda"``).
    """
    missing = sorted({p.manager for p in plan.packages} - set(installers))
    if missing:
        raise BuildError(f"no installer for {', '.join(missing)} packages (layer {plan.name})")
    key = layer_key(plan, prefix, python, epoch)
    blob = _remembered(cache, key)
    if blob is not None:
        return BuiltLayer(plan, blob, reused=True)
    cache.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="stage-", dir=cache.root))
    try:
        for package in plan.packages:
            installers[package.manager].install(files[package], package, staging, prefix, python)
        blob = write_layer(staging, cache, epoch)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _remember(cache, key, blob)
    return BuiltLayer(plan, blob, reused=False)


def build_tree_layer(
    plan: LayerPlan, cache: BlobCache, tree: dict[str, bytes | str], epoch: int
) -> BuiltLayer:
    """A layer from an in-memory tree: path -> bytes (a file) or ``"->target"`` (a symlink).

    Paths are absolute image paths; a path ending in ``/`` is a directory.
    """
    key = sha256_digest(
        canonical_json(
            {
                "format": LAYER_FORMAT,
                "epoch": epoch,
                "tree": {k: (v if isinstance(v, str) else sha256_digest(v)) for k, v in tree.items()},
            }
        )
    ).split(":")[1]
    blob = _remembered(cache, key)
    if blob is not None:
        return BuiltLayer(plan, blob, reused=True)
    cache.root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="stage-", dir=cache.root))
    try:
        for image_path, content in sorted(tree.items()):
            target = staging / image_path.lstrip("/")
            if image_path.endswith("/"):
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                target.symlink_to(content.removeprefix("->"))
            else:
                target.write_bytes(content)
        blob = write_layer(staging, cache, epoch)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    _remember(cache, key, blob)
    return BuiltLayer(plan, blob, reused=False)
