"""Checks of OCI image documents someone else wrote (a layout on disk, a registry's answer).

Pure: the adapters read the bytes; the ``parse_*`` helpers here judge them and return typed
values, or raise InputError naming ``where`` (the file or URL the caller read) and the key, with a
hint. Digests are validated before anything can use them as a path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from envctl.core.image import (
    DOCKER_TO_OCI,
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_LAYER_GZIP,
    MEDIA_LAYER_TAR,
    MEDIA_MANIFEST,
    BaseImage,
    Layer,
    sha256_digest,
)
from envctl.errors import InputError

#: the layer media types an image may carry (after DOCKER_TO_OCI); zstd is listed so that the
#: error comes from the unpacker that cannot read it, naming the layer, not from here
LAYER_TYPES = frozenset(
    {
        MEDIA_LAYER_TAR,
        MEDIA_LAYER_GZIP,
        "application/vnd.oci.image.layer.v1.tar+zstd",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
    }
)
REF_ANNOTATION = "org.opencontainers.image.ref.name"
#: JSON documents are tiny; the distribution spec caps manifests at 4 MiB, configs get room for
#: a long history. A larger "document" is refused before it is read.
MAX_DOCUMENT_BYTES = 8 << 20
#: entries of one index or layers of one manifest (overlayfs stops at 128 layers)
MAX_DESCRIPTORS = 1024
#: index -> index -> ... -> manifest hops (a layout's index.json naming a multi-platform index is 2)
MAX_INDEX_DEPTH = 4
DAMAGED_HINT = "the image is damaged or not an OCI image; export it again (envctl build -o DIR, skopeo copy)"


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _cut(value: object) -> str:
    text = repr(value)  # the end stays visible: a stray "\n" is often the whole story
    return text if len(text) <= 60 else f"{text[:40]}...{text[-16:]}"


def _fail(where: str, key: str, problem: str, hint: str | None = DAMAGED_HINT) -> InputError:
    return InputError(f"{where}: {key}: {problem}" if key else f"{where}: {problem}", hint=hint)


def digest_hex(digest: object, where: str = "digest", key: str = "") -> str:
    """The hex part of a ``sha256:<64 hex>`` digest; InputError for anything else, so that a
    hostile document can never name a path such as ``sha256:../../x`` (or one ending in ``\\n``)."""
    if not isinstance(digest, str) or _DIGEST.fullmatch(digest) is None:
        raise _fail(where, key, f"malformed digest {_cut(digest)}, expected sha256:<64 lowercase hex>")
    return digest[7:]


@dataclass(frozen=True)
class Platform:
    """An OCI platform: ``linux/amd64``, ``linux/arm64/v8``."""

    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``OS/ARCH[/VARIANT]``."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InputError(f"platform {_cut(text)}: expected OS/ARCH[/VARIANT]", hint="e.g. linux/amd64")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else None)

    def matches(self, other: Platform) -> bool:
        """Whether an image for ``other`` runs here (a variant counts only when this one names it)."""
        same = (self.os, self.architecture) == (other.os, other.architecture)
        return same and (self.variant is None or self.variant == other.variant)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


@dataclass(frozen=True)
class Descriptor:
    """A checked OCI descriptor: what a blob is, its digest and size, and what the index says."""

    media_type: str  # OCI spelling (Docker's names are mapped)
    digest: str
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict, hash=False)
    platform: Platform | None = None

    @property
    def hex(self) -> str:
        """The digest without ``sha256:``; safe as a file name."""
        return self.digest[7:]

    @property
    def ref_name(self) -> str | None:
        """The ``org.opencontainers.image.ref.name`` annotation (a layout's tag)."""
        return self.annotations.get(REF_ANNOTATION)


@dataclass(frozen=True)
class Manifest:
    """A checked image manifest."""

    config: Descriptor
    layers: tuple[Descriptor, ...]


def _mapping(value: object, where: str, key: str, what: str = "an object") -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(where, key, f"expected {what}, got {type(value).__name__}")
    return value


def _strings(value: object, where: str, key: str) -> dict[str, str]:
    found = _mapping(value, where, key, "a mapping of strings")
    for name, item in found.items():
        if not isinstance(item, str):
            raise _fail(where, f"{key}.{name}", f"expected a string, got {type(item).__name__}")
    return dict(found)


def _string(doc: Mapping[str, Any], name: str, where: str, key: str) -> str | None:
    value = doc.get(name)
    if value is not None and not isinstance(value, str):
        raise _fail(where, f"{key}.{name}" if key else name, f"expected a string, got {type(value).__name__}")
    return value


def _schema_v2(doc: Mapping[str, Any], where: str) -> None:
    version = doc.get("schemaVersion", 2)
    if version != 2 or isinstance(version, bool):
        raise _fail(where, "schemaVersion", f"expected 2, got {_cut(version)}")


def load_document(data: bytes, where: str) -> Mapping[str, Any]:
    """Parse a JSON document that must be an object."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise _fail(where, "", f"not JSON ({_cut(str(exc))})") from None
    return _mapping(doc, where, "", "a JSON object")


def check_bytes(data: bytes, descriptor: Descriptor, where: str, key: str) -> None:
    """The blob's bytes are what its descriptor (``key`` in ``where``) promised; size first."""
    if len(data) != descriptor.size:
        raise _fail(
            where,
            key,
            f"blob {descriptor.digest} has {len(data)} bytes, the descriptor says {descriptor.size}",
        )
    if sha256_digest(data) != descriptor.digest:
        raise _fail(where, key, f"blob {descriptor.digest} does not match its digest")


def parse_descriptor(value: object, where: str, key: str) -> Descriptor:
    """A descriptor (``{mediaType, digest, size, annotations?, platform?}``), every field checked."""
    desc = _mapping(value, where, key, "a descriptor object")
    media_type = _string(desc, "mediaType", where, key)
    if media_type is None:
        raise _fail(where, f"{key}.mediaType", "missing")
    digest = desc.get("digest")
    digest_hex(digest, where, f"{key}.digest")
    size = desc.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _fail(where, f"{key}.size", f"expected a byte count, got {_cut(size)}")
    annotations = _strings(desc.get("annotations", {}), where, f"{key}.annotations")
    platform = None
    if desc.get("platform") is not None:
        plat = _mapping(desc["platform"], where, f"{key}.platform")
        os_, arch = (_string(plat, n, where, f"{key}.platform") for n in ("os", "architecture"))
        if not os_ or not arch:
            raise _fail(where, f"{key}.platform", "expected os and architecture")
        platform = Platform(os_, arch, _string(plat, "variant", where, f"{key}.platform") or None)
    return Descriptor(DOCKER_TO_OCI.get(media_type, media_type), str(digest), size, annotations, platform)


def _descriptors(value: object, where: str, key: str) -> list[Descriptor]:
    if not isinstance(value, list):
        raise _fail(where, key, f"expected a list, got {type(value).__name__}")
    if len(value) > MAX_DESCRIPTORS:
        raise _fail(where, key, f"{len(value)} entries, at most {MAX_DESCRIPTORS} are read")
    return [parse_descriptor(item, where, f"{key}[{n}]") for n, item in enumerate(value)]


def _own_type(doc: Mapping[str, Any], where: str, wanted: str) -> None:
    media_type = _string(doc, "mediaType", where, "")
    if media_type is not None and DOCKER_TO_OCI.get(media_type, media_type) != wanted:
        raise _fail(where, "mediaType", f"expected {wanted}, got {_cut(media_type)}")


def parse_index(doc: Mapping[str, Any], where: str) -> tuple[Descriptor, ...]:
    """The entries of an image index (a layout's index.json, or a multi-platform index)."""
    _schema_v2(doc, where)
    _own_type(doc, where, MEDIA_INDEX)
    entries = _descriptors(doc.get("manifests"), where, "manifests")
    if not entries:
        raise _fail(where, "manifests", "expected at least one image")
    return tuple(entries)


def parse_manifest(doc: Mapping[str, Any], where: str) -> Manifest:
    """An image manifest: a config descriptor and layer descriptors of known media types."""
    _schema_v2(doc, where)
    _own_type(doc, where, MEDIA_MANIFEST)
    if "config" not in doc:
        raise _fail(where, "config", "missing; an image manifest names its config")
    config = parse_descriptor(doc["config"], where, "config")
    if config.media_type != MEDIA_CONFIG:
        raise _fail(where, "config.mediaType", f"expected {MEDIA_CONFIG}, got {_cut(config.media_type)}")
    layers = _descriptors(doc.get("layers"), where, "layers")
    for n, layer in enumerate(layers):
        if layer.media_type not in LAYER_TYPES:
            raise _fail(where, f"layers[{n}].mediaType", f"not a layer type: {_cut(layer.media_type)}")
    return Manifest(config, tuple(layers))


def parse_config(
    doc: Mapping[str, Any], where: str, manifest: Manifest, platform: Platform
) -> dict[str, Any]:
    """An image config that matches its manifest (one diff_id per layer) and ``platform``."""
    rootfs = _mapping(doc.get("rootfs"), where, "rootfs")
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list):
        raise _fail(where, "rootfs.diff_ids", f"expected a list, got {type(diff_ids).__name__}")
    for n, diff_id in enumerate(diff_ids):
        digest_hex(diff_id, where, f"rootfs.diff_ids[{n}]")
    if len(diff_ids) != len(manifest.layers):
        raise _fail(
            where,
            "rootfs.diff_ids",
            f"{len(diff_ids)} entries, the manifest has {len(manifest.layers)} layers",
        )
    os_, arch = _string(doc, "os", where, ""), _string(doc, "architecture", where, "")
    if arch is not None and not platform.matches(
        Platform(os_ or platform.os, arch, _string(doc, "variant", where, ""))
    ):
        raise _fail(
            where,
            "architecture",
            f"the image is for {os_}/{arch}, not {platform}",
            hint=f"use an image built for {platform}",
        )
    return dict(doc)


def select_image(
    entries: Sequence[Descriptor], where: str, platform: Platform, ref: str | None = None
) -> Descriptor:
    """The one entry of an index to use: the one named ``ref`` (a layout's tag) when given, then
    the one for ``platform`` when several remain and each says its platform."""
    images = [(n, e) for n, e in enumerate(entries) if e.media_type in (MEDIA_MANIFEST, MEDIA_INDEX)]
    if ref is not None:
        names = sorted({e.ref_name for _, e in images if e.ref_name})
        images = [(n, e) for n, e in images if e.ref_name == ref]
        if not images:
            raise _fail(
                where,
                "",
                f"no image tagged {_cut(ref)[1:-1]}",
                hint=f"tags here: {', '.join(names) or 'none'}",
            )
    if len(images) > 1 and all(e.platform for _, e in images):
        matching = [(n, e) for n, e in images if e.platform and platform.matches(e.platform)]
        if not matching:
            have = ", ".join(sorted({str(e.platform) for _, e in images}))
            raise _fail(where, "manifests", f"no {platform} image in the index", hint=f"it has {have}")
        images = matching
    if len(images) != 1:
        names = sorted({str(e.ref_name) for _, e in images})
        raise _fail(
            where,
            "manifests",
            "expected exactly one image manifest"
            + (f" tagged {ref}" if ref else "")
            + f", found {len(images)}",
            hint=f"name one by its tag (oci:DIR:TAG): {', '.join(names)}",
        )
    n, entry = images[0]
    if entry.platform and entry.media_type == MEDIA_MANIFEST and not platform.matches(entry.platform):
        raise _fail(
            where,
            f"manifests[{n}].platform",
            f"the image is for {entry.platform}, not {platform}",
            hint=f"use an image built for {platform}",
        )
    return entry


def base_image(ref: str, manifest_digest: str, manifest: Manifest, config: Mapping[str, Any]) -> BaseImage:
    """A BaseImage from its checked manifest and config (see parse_config)."""
    diff_ids = list(config["rootfs"]["diff_ids"])
    layers = tuple(
        Layer(digest=d.digest, diff_id=diff_id, size=d.size, media_type=d.media_type, created_by="base")
        for d, diff_id in zip(manifest.layers, diff_ids, strict=True)
    )
    return BaseImage(ref=ref, manifest_digest=manifest_digest, config=dict(config), layers=layers)
