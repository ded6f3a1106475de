"""Read an OCI image layout directory (oci-layout, index.json, blobs/sha256/HEX) for pushing."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.errors import InputError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_MANIFEST_TYPES = {
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
}
REF_ANNOTATION = "org.opencontainers.image.ref.name"


@dataclass(frozen=True)
class Blob:
    """One content-addressed blob of an image."""

    digest: str
    size: int


@dataclass(frozen=True)
class OciImage:
    """An image in a local OCI layout: its manifest digest names it everywhere."""

    root: Path
    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    ref_name: str | None

    @property
    def blobs(self) -> tuple[Blob, ...]:
        """Every blob a node needs: layers first, manifest last (it names the rest)."""
        return (*self.layers, self.config, self.manifest)

    def blob_path(self, digest: str) -> Path:
        """Where a blob lies in the layout."""
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")


def _load(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no {what}", hint="is this an OCI image layout directory?") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable {what}: {exc}") from exc


def _blob(root: Path, desc: Any, where: str) -> Blob:
    if not isinstance(desc, dict):
        raise InputError(f"{root}: {where}: expected a descriptor object")
    digest, size = desc.get("digest"), desc.get("size")
    if not isinstance(digest, str) or not _DIGEST.match(digest):
        raise InputError(f"{root}: {where}.digest: expected sha256:<64 hex>, got {digest!r}")
    if not isinstance(size, int) or size < 0:
        raise InputError(f"{root}: {where}.size: expected a byte count, got {size!r}")
    path = root / "blobs" / "sha256" / digest[7:]
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"{root}: {where}: blob {digest} is missing from the layout") from None
    if actual != size:
        raise InputError(f"{root}: {where}: blob {digest} has {actual} bytes, descriptor says {size}")
    return Blob(digest, size)


def read_image(root: Path, ref: str | None = None) -> OciImage:
    """The one image of the layout (or the one whose ref name is ``ref``), validated."""
    if not (root / "oci-layout").is_file():
        raise InputError(f"{root}: not an OCI image layout (no oci-layout file)")
    index = _load(root / "index.json", "index.json")
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or not manifests:
        raise InputError(f"{root}/index.json: manifests: expected a non-empty list")
    candidates = [
        (i, m)
        for i, m in enumerate(manifests)
        if isinstance(m, dict) and m.get("mediaType", next(iter(_MANIFEST_TYPES))) in _MANIFEST_TYPES
    ]
    if ref is not None:
        candidates = [(i, m) for i, m in candidates if m.get("annotations", {}).get(REF_ANNOTATION) == ref]
    if len(candidates) != 1:
        names = [m.get("annotations", {}).get(REF_ANNOTATION) for _, m in candidates]
        raise InputError(
            f"{root}/index.json: expected exactly one image manifest"
            + (f" named {ref!r}" if ref else "")
            + f", found {len(candidates)}",
            hint=f"pick one by ref name: {names}" if len(candidates) > 1 else None,
        )
    i, desc = candidates[0]
    manifest = _blob(root, desc, f"index.json manifests[{i}]")
    body = _load(root / "blobs" / "sha256" / manifest.digest[7:], "manifest")
    if not isinstance(body, dict) or not isinstance(body.get("layers"), list):
        raise InputError(f"{root}: manifest {manifest.digest}: expected config and layers")
    config = _blob(root, body.get("config"), "manifest config")
    layers = tuple(_blob(root, d, f"manifest layers[{n}]") for n, d in enumerate(body["layers"]))
    ref_name = desc.get("annotations", {}).get(REF_ANNOTATION)
    return OciImage(root, manifest, config, layers, ref_name if isinstance(ref_name, str) else None)
