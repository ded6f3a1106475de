"""OCI image layouts on disk: the one reader (for build's base and for push) and the writer.

``read_image`` walks index.json -> (image index ->) manifest -> config and layers, and checks
what core/image_check judges (media types, digests, sizes, document shapes, the platform) plus
what only the file system can tell: the layout marker, every blob present, a regular file of the
promised size, and every JSON document matching its digest. Every error names the file and key.

Layouts are written as owned outputs (``adapters.outputs``): into a temporary directory that
replaces ``-o DIR`` at the end, so it holds the previous image or the new one, never half of one,
and never replaces a directory that envctl did not make.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envctl.adapters.blob_cache import BlobCache
from envctl.core.image import MEDIA_INDEX, BaseImage, canonical_json, sha256_digest
from envctl.core.image_check import (
    DAMAGED_HINT,
    MAX_DOCUMENT_BYTES,
    MAX_INDEX_DEPTH,
    Descriptor,
    Manifest,
    Platform,
    base_image,
    check_bytes,
    digest_hex,
    load_document,
    parse_config,
    parse_index,
    parse_manifest,
    select_image,
)
from envctl.errors import BuildError, InputError

LINUX_AMD64 = Platform("linux", "amd64")


@dataclass(frozen=True)
class OciImage:
    """One image of a local OCI layout, checked: its manifest digest names it everywhere."""

    root: Path
    manifest: Descriptor
    config: Descriptor
    layers: tuple[Descriptor, ...]
    ref_name: str | None  # the index.json entry's tag
    platform: Platform  # the platform it was chosen for
    config_document: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Every blob a node needs: layers first, manifest last (it names the rest)."""
        return (*self.layers, self.config, self.manifest)

    def blob_path(self, digest: str) -> Path:
        """Where a blob lies in the layout."""
        return self.root / "blobs" / "sha256" / digest_hex(digest, str(self.root))


def _blob_where(root: Path, descriptor: Descriptor) -> str:
    return str(root / "blobs" / "sha256" / descriptor.hex)


def _open(path: Path) -> int:
    """An fd of the regular file ``path``, never through a symbolic link (ELOOP) or a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise IsADirectoryError(errno.EISDIR, "not a regular file")
    return fd


def _read_document(path: Path, what: str) -> bytes:
    """The bytes of a small JSON file; ``what`` starts each error (the file and key naming it)."""
    try:
        fd = _open(path)
    except FileNotFoundError:
        raise InputError(f"{what} is missing from the layout", hint=DAMAGED_HINT) from None
    except OSError as exc:
        problems = {errno.ELOOP: "a symbolic link", errno.EISDIR: "not a regular file"}
        problem = problems.get(exc.errno or 0, f"unreadable ({exc.strerror})")
        raise InputError(f"{what} is {problem}", hint=DAMAGED_HINT) from None
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(MAX_DOCUMENT_BYTES + 1)
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(f"{what} is larger than {MAX_DOCUMENT_BYTES} bytes, not read", hint=DAMAGED_HINT)
    return data


def _document(root: Path, descriptor: Descriptor, where: str, key: str) -> tuple[Mapping[str, Any], str]:
    """A JSON blob named by ``key`` of ``where``, checked against its descriptor; and its path."""
    if descriptor.size > MAX_DOCUMENT_BYTES:
        raise InputError(
            f"{where}: {key}.size: {descriptor.size} bytes is no JSON document (at most {MAX_DOCUMENT_BYTES})",
            hint=DAMAGED_HINT,
        )
    path = _blob_where(root, descriptor)
    data = _read_document(Path(path), f"{where}: {key}: blob {descriptor.digest}")
    check_bytes(data, descriptor, where, key)
    return load_document(data, path), path


def _check_layer(root: Path, descriptor: Descriptor, where: str, key: str) -> None:
    """A layer blob is a regular file of its size (its digest is checked by whoever reads it:
    the blob cache on import, the node before it enters the store)."""
    what = f"blob {descriptor.digest}"
    try:
        info = os.lstat(_blob_where(root, descriptor))
    except FileNotFoundError:
        raise InputError(f"{where}: {key}: {what} is missing from the layout", hint=DAMAGED_HINT) from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{where}: {key}: {what} is not a regular file", hint=DAMAGED_HINT)
    if info.st_size != descriptor.size:
        raise InputError(
            f"{where}: {key}: {what} has {info.st_size} bytes, the descriptor says {descriptor.size}",
            hint=DAMAGED_HINT,
        )


def read_image(root: Path, ref: str | None = None, platform: Platform = LINUX_AMD64) -> OciImage:
    """The image of the layout at ``root`` tagged ``ref`` (or its only one) for ``platform``.

    An index (index.json, or a multi-platform index it names) with several images that each say
    their platform gives the one for ``platform``.
    """
    if not root.is_dir():
        raise InputError(f"{root}: no such OCI layout directory", hint="check the path")
    marker = root / "oci-layout"
    if not marker.is_file():
        raise InputError(f"{root}: not an OCI image layout (no oci-layout file)", hint="check the path")
    version = load_document(_read_document(marker, str(marker)), str(marker)).get("imageLayoutVersion")
    if not isinstance(version, str) or not version.startswith("1."):
        raise InputError(
            f"{marker}: imageLayoutVersion: expected 1.x, got {version!r:.40}", hint=DAMAGED_HINT
        )
    where = str(root / "index.json")
    index = load_document(_read_document(root / "index.json", where), where)
    entries = parse_index(index, where)
    entry = select_image(entries, where, platform, ref)
    ref_name = entry.ref_name
    for _ in range(MAX_INDEX_DEPTH):
        if entry.media_type != MEDIA_INDEX:
            break
        nested, where = _document(root, entry, where, f"manifests[{entries.index(entry)}]")
        entries = parse_index(nested, where)
        entry = select_image(entries, where, platform)
    else:
        raise InputError(f"{where}: indexes nest deeper than {MAX_INDEX_DEPTH}", hint=DAMAGED_HINT)
    body, mwhere = _document(root, entry, where, f"manifests[{entries.index(entry)}]")
    manifest = parse_manifest(body, mwhere)
    config, cwhere = _document(root, manifest.config, mwhere, "config")
    config_document = parse_config(config, cwhere, manifest, platform)
    for n, layer in enumerate(manifest.layers):
        _check_layer(root, layer, mwhere, f"layers[{n}]")
    return OciImage(root, entry, manifest.config, manifest.layers, ref_name, platform, config_document)


def read_platform_images(root: Path, platforms: Sequence[str]) -> dict[str, OciImage]:
    """Every image of the layout at ``root`` for one of ``platforms`` (``linux/arm64``), by platform.

    A one-platform layout gives one entry; a multi-platform index one per platform it has among
    ``platforms``. A layout with none of them raises the first platform's error.
    """
    found: dict[str, OciImage] = {}
    first: InputError | None = None
    for text in platforms:
        try:
            found[text] = read_image(root, platform=Platform.parse(text))
        except InputError as exc:
            first = first or exc
    if not found:
        assert first is not None
        raise first
    return found


@contextlib.contextmanager
def build_errors() -> Iterator[None]:
    """Report a bad image document as what it is to a build: bad build input (BuildError)."""
    try:
        yield
    except InputError as exc:
        raise BuildError(exc.message, hint=exc.hint) from exc


def read_base(
    directory: Path, tag: str | None, cache: BlobCache, architecture: str, ref: str | None = None
) -> BaseImage:
    """Import the image ``tag`` (or the only one) of an OCI layout into the cache, as a base."""
    ref = ref or f"oci:{directory}" + (f":{tag}" if tag else "")
    if not directory.is_dir():
        raise BuildError(f"{ref}: no such OCI layout directory", hint="check the --base path")
    with build_errors():
        image = read_image(directory, tag, Platform("linux", architecture))
    for blob in image.blobs:
        if not cache.has(blob.hex):
            cache.put_file(image.blob_path(blob.digest), blob.hex)  # verifies the digest
    manifest = Manifest(image.config, image.layers)
    return base_image(ref, image.manifest.digest, manifest, image.config_document)


def write_layout(
    directory: Path,
    cache: BlobCache,
    blobs: list[str],
    documents: list[bytes],
    index: dict[str, Any],
    *,
    force: bool = False,
) -> None:
    """Write an OCI layout: cached ``blobs`` (digests), extra ``documents`` and ``index``.

    ``directory`` is an owned output (``adapters.outputs``): a directory envctl did not make is
    refused unless ``force``.
    """
    from envctl.adapters.outputs import OCI_LAYOUT, owned_dir

    with owned_dir(directory, OCI_LAYOUT, force=force) as tmp, build_errors():
        (tmp / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        for digest in blobs:
            cache.link_into(digest_hex(digest), tmp / "blobs" / "sha256" / digest_hex(digest))
        for data in documents:
            path = tmp / "blobs" / "sha256" / digest_hex(sha256_digest(data))
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        (tmp / "index.json").write_bytes(canonical_json(index))
