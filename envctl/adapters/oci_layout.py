"""OCI image layouts on disk: read a base image from one, write a built image into one.

Layouts are written into a temporary sibling directory and swapped into place at the end, so
``-o DIR`` holds either the previous image or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from envctl.adapters.blob_cache import BlobCache
from envctl.core.image import (
    DOCKER_TO_OCI,
    MEDIA_INDEX,
    BaseImage,
    Layer,
    canonical_json,
    sha256_digest,
)
from envctl.errors import BuildError

REF_ANNOTATION = "org.opencontainers.image.ref.name"


def digest_hex(digest: str) -> str:
    """The hex part of a ``sha256:<64 hex>`` digest; BuildError for anything else (a hostile
    manifest must not name a path like ``sha256:../../x``)."""
    algorithm, _, value = digest.partition(":")
    if algorithm != "sha256" or len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        raise BuildError(f"unsupported or malformed digest {digest!r}")
    return value


def _load_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BuildError(f"{what}: {path} is missing", hint="is this an OCI image layout?") from None
    except (OSError, ValueError) as exc:
        raise BuildError(f"{what}: cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise BuildError(f"{what}: {path} is not a JSON object")
    return data


def pick_platform(index: dict[str, Any], architecture: str, what: str) -> dict[str, Any]:
    """The manifest descriptor of ``linux/<architecture>`` in an image index."""
    for entry in index.get("manifests") or []:
        platform = entry.get("platform") or {}
        if platform.get("os") == "linux" and platform.get("architecture") == architecture:
            return dict(entry)
    raise BuildError(f"{what}: no linux/{architecture} image in the index")


def base_from_documents(
    ref: str, manifest: dict[str, Any], manifest_digest: str, config: dict[str, Any]
) -> BaseImage:
    """A BaseImage from its manifest and config (layer blobs must already be in the cache)."""
    diff_ids = list((config.get("rootfs") or {}).get("diff_ids") or [])
    descriptors = list(manifest.get("layers") or [])
    if len(diff_ids) != len(descriptors):
        raise BuildError(f"{ref}: manifest has {len(descriptors)} layers, config {len(diff_ids)}")
    for descriptor in descriptors:
        digest_hex(str(descriptor.get("digest", "")))
    layers = tuple(
        Layer(
            digest=d["digest"],
            diff_id=diff_id,
            size=int(d["size"]),
            media_type=DOCKER_TO_OCI.get(d["mediaType"], d["mediaType"]),
            created_by="base",
        )
        for d, diff_id in zip(descriptors, diff_ids, strict=True)
    )
    return BaseImage(ref=ref, manifest_digest=manifest_digest, config=config, layers=layers)


def read_layout(
    directory: Path, tag: str | None, cache: BlobCache, architecture: str, ref: str | None = None
) -> BaseImage:
    """Import the image ``tag`` (or the only one) of an OCI layout into the cache."""
    ref = ref or f"oci:{directory}" + (f":{tag}" if tag else "")
    if not directory.is_dir():
        raise BuildError(f"{ref}: no such OCI layout directory", hint="check the --base path")
    index = _load_json(directory / "index.json", ref)
    entries = list(index.get("manifests") or [])
    if tag:
        entries = [e for e in entries if (e.get("annotations") or {}).get(REF_ANNOTATION) == tag]
    if len(entries) != 1:
        raise BuildError(
            f"{ref}: {'no image tagged ' + tag if tag else 'expected one image'} "
            f"in the layout ({len(entries)} found)",
            hint="name the tag: oci:DIR:TAG",
        )
    entry = entries[0]

    def blob(digest: str) -> Path:
        return directory / "blobs" / "sha256" / digest_hex(digest)

    def import_blob(digest: str) -> None:
        if not cache.has(digest_hex(digest)):
            cache.put_file(blob(digest), digest_hex(digest))

    if DOCKER_TO_OCI.get(entry["mediaType"], entry["mediaType"]) == MEDIA_INDEX:
        entry = pick_platform(_load_json(blob(entry["digest"]), ref), architecture, ref)
    for digest in (entry["digest"],):
        import_blob(digest)
    manifest = _load_json(cache.path(digest_hex(entry["digest"])), ref)
    import_blob(manifest["config"]["digest"])
    config = _load_json(cache.path(digest_hex(manifest["config"]["digest"])), ref)
    for layer in manifest.get("layers") or []:
        import_blob(layer["digest"])
    return base_from_documents(ref, manifest, entry["digest"], config)


@contextlib.contextmanager
def swap_dir(target: Path) -> Iterator[Path]:
    """A temporary sibling of ``target`` that replaces it only when the block succeeds."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    tmp.chmod(0o755)
    try:
        yield tmp
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
            os.replace(target, old / "x")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_layout(
    directory: Path,
    cache: BlobCache,
    blobs: list[str],
    documents: list[bytes],
    index: dict[str, Any],
) -> None:
    """Write an OCI layout: cached ``blobs`` (digests), extra ``documents`` and ``index``."""
    with swap_dir(directory) as tmp:
        (tmp / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        for digest in blobs:
            cache.link_into(digest_hex(digest), tmp / "blobs" / "sha256" / digest_hex(digest))
        for data in documents:
            path = tmp / "blobs" / "sha256" / digest_hex(sha256_digest(data))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (tmp / "index.json").write_bytes(canonical_json(index))
