"""Resolve ``--base`` into a BaseImage in the blob cache, and find the Python it provides."""

from __future__ import annotations

import gzip
import json
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from envctl.adapters.blob_cache import BlobCache
from envctl.core.image import BaseImage, canonical_json, sha256_digest
from envctl.errors import BuildError

_BIN = re.compile(r"(?:\./)?(usr/(?:local/)?bin)/python(3\.\d+)")
_LIB = re.compile(r"(?:\./)?usr/(?:local/)?lib/python(3\.\d+)/os\.py")


@dataclass(frozen=True)
class BasePython:
    """A CPython found in the base image's filesystem."""

    version: str  # "3.11"
    executable: str  # "/usr/bin/python3.11"

    @property
    def home(self) -> str:
        """The directory of the executable (a venv's ``home``)."""
        return self.executable.rsplit("/", 1)[0]


class BaseSource:
    """The real ``--base`` references, loaded into ``cache`` (a ``core.build_parts.BaseResolver``)."""

    def __init__(self, cache: BlobCache, insecure_registry: bool = False) -> None:
        self.cache = cache
        self.insecure_registry = insecure_registry

    def resolve(self, ref: str, architecture: str) -> BaseImage:
        """See ``resolve_base``."""
        return resolve_base(ref, self.cache, architecture, self.insecure_registry)


def resolve_base(ref: str, cache: BlobCache, architecture: str, insecure_registry: bool = False) -> BaseImage:
    """Load the base image named by ``ref`` into the cache.

    ``oci:DIR[:TAG]``, ``docker-archive:FILE``, ``docker:NAME``, ``base:NAME`` (a recipe built
    by ``envctl base build``), else a registry reference ``HOST[:PORT]/REPO[:TAG]``.
    """
    from envctl.adapters import docker_archive, oci_layout

    kind, _, rest = ref.partition(":")
    if kind == "oci" and rest:
        directory, tag = Path(rest), None
        if not directory.is_dir() and ":" in rest:
            head, _, tail = rest.rpartition(":")
            directory, tag = Path(head), tail
        return oci_layout.read_base(directory, tag, cache, architecture)
    if kind == "docker-archive" and rest:
        return docker_archive.read_archive(Path(rest), cache)
    if kind == "docker" and rest and not rest.startswith("//"):
        from envctl.adapters.docker_engine import save_image

        cache.root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="save-", dir=cache.root) as tmp:
            target = Path(tmp) / "image.tar"
            save_image(rest, target)
            return docker_archive.read_archive(target, cache, ref=ref)
    if kind == "base" and rest:
        from envctl.services.build.base_images import built_layout

        layout = built_layout(rest, cache.root)
        return oci_layout.read_base(layout, None, cache, architecture, ref=ref)
    from envctl.adapters.registry_client import RegistryClient, RegistryRef

    text = rest.lstrip("/") if kind in ("registry", "docker") else ref
    client = RegistryClient(RegistryRef.parse(text), insecure=insecure_registry)
    return client.pull(cache, architecture)


def _scan_layer(path: Path) -> tuple[dict[str, str], set[str]]:
    bins: dict[str, str] = {}
    libs: set[str] = set()
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as fh, tarfile.open(fileobj=fh, mode="r|") as archive:  # type: ignore[operator]
        for member in archive:
            if match := _BIN.fullmatch(member.name):
                bins[match.group(2)] = f"/{match.group(1)}/python{match.group(2)}"
            elif match := _LIB.fullmatch(member.name):
                libs.add(match.group(1))
    return bins, libs


def find_python(base: BaseImage, cache: BlobCache) -> dict[str, BasePython]:
    """Every CPython ``X.Y`` that has both an interpreter and its stdlib in the base's layers.

    Results are cached by the layers' digests, so a warm build does not rescan the base.
    """
    key = sha256_digest(canonical_json([layer.digest for layer in base.layers])).split(":")[1]
    memo = cache.root / "python-probe" / f"{key}.json"
    if memo.is_file():
        found = json.loads(memo.read_text())
    else:
        bins: dict[str, str] = {}
        libs: set[str] = set()
        for layer in base.layers:
            try:
                layer_bins, layer_libs = _scan_layer(cache.path(layer.digest.split(":")[1]))
            except (OSError, tarfile.TarError, EOFError) as exc:
                raise BuildError(f"{base.ref}: cannot read layer {layer.digest}: {exc}") from exc
            bins.update(layer_bins)
            libs |= layer_libs
        found = {v: path for v, path in bins.items() if v in libs}
        memo.parent.mkdir(parents=True, exist_ok=True)
        memo.write_text(json.dumps(found, sort_keys=True))
    return {version: BasePython(version, path) for version, path in found.items()}


def python_for(base: BaseImage, cache: BlobCache, wanted: str) -> BasePython:
    """The base's Python ``wanted``; BuildError naming what the base has otherwise."""
    found = find_python(base, cache)
    if wanted in found:
        return found[wanted]
    has = ", ".join(sorted(found)) or "no Python"
    raise BuildError(
        f"{base.ref}: base image has {has}, the lock needs Python {wanted}",
        hint=f"use a base with python{wanted} (e.g. `envctl base build` a matching recipe)",
    )
