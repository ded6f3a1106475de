"""docker-archive tarballs (what ``docker save`` writes and ``docker load`` reads)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

from envctl.adapters.blob_cache import BlobCache
from envctl.core.image import (
    MEDIA_LAYER_GZIP,
    MEDIA_LAYER_TAR,
    BaseImage,
    Layer,
    canonical_json,
    sha256_digest,
)
from envctl.core.image_check import load_document
from envctl.core.names import valid_digest
from envctl.core.shown import one_line
from envctl.errors import BuildError


def _member_json(archive: tarfile.TarFile, name: str, what: str) -> Any:
    try:
        member = archive.extractfile(name)
    except KeyError:
        member = None
    if member is None:
        raise BuildError(f"{what}: {name} is missing", hint="is this a `docker save` tarball?")
    try:
        return json.loads(member.read())
    except (ValueError, RecursionError) as exc:
        raise BuildError(f"{what}: {name} is not JSON: {one_line(str(exc))}") from None


def read_archive(path: Path, cache: BlobCache, ref: str | None = None) -> BaseImage:
    """Import the (first) image of a docker-archive tarball into the cache."""
    ref = ref or f"docker-archive:{path}"
    if not path.is_file():
        raise BuildError(f"{ref}: no such file", hint="check the --base path")
    try:
        with tarfile.open(path, "r:") as archive:
            manifests = _member_json(archive, "manifest.json", ref)
            if not isinstance(manifests, list) or not manifests:
                raise BuildError(f"{ref}: manifest.json lists no image")
            entry = manifests[0]
            config_raw = archive.extractfile(entry["Config"])
            if config_raw is None:
                raise BuildError(f"{ref}: {entry['Config']} is missing")
            config_bytes = config_raw.read()
            config = dict(load_document(config_bytes, f"{ref}: {entry['Config']}"))
            diff_ids = list(config["rootfs"]["diff_ids"])
            layers = []
            for name, diff_id in zip(entry["Layers"], diff_ids, strict=True):
                valid_digest(diff_id, f"{ref}: rootfs.diff_ids", BuildError)
                member = archive.extractfile(name)
                if member is None:
                    raise BuildError(f"{ref}: layer {name} is missing")
                head = member.read(2)
                member.seek(0)
                hex_digest = cache.put_stream(member, None, f"{ref}: {name}")  # type: ignore[arg-type]
                gzipped = head == b"\x1f\x8b"
                if not gzipped and f"sha256:{hex_digest}" != diff_id:
                    raise BuildError(f"{ref}: layer {name} does not match its diff_id {diff_id}")
                layers.append(
                    Layer(
                        digest=f"sha256:{hex_digest}",
                        diff_id=diff_id,
                        size=cache.path(hex_digest).stat().st_size,
                        media_type=MEDIA_LAYER_GZIP if gzipped else MEDIA_LAYER_TAR,
                        created_by="base",
                    )
                )
    except (tarfile.TarError, OSError, KeyError, ValueError, TypeError) as exc:
        raise BuildError(f"{ref}: not a readable docker archive: {one_line(str(exc))}") from exc
    cache.put_stream(io.BytesIO(config_bytes))
    return BaseImage(
        ref=ref, manifest_digest=sha256_digest(config_bytes), config=config, layers=tuple(layers)
    )


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    archive.addfile(info, io.BytesIO(data))


def write_archive(
    path: Path,
    cache: BlobCache,
    layers: list[str],
    documents: dict[str, bytes],
    config_digest: str,
    repo_tag: str,
    mtime: int,
    *,
    force: bool = False,
) -> None:
    """Write a docker-archive that also is an OCI layout (like Docker 25's ``docker save``).

    ``documents`` maps file names inside the tar (index.json, oci-layout, blobs/...) to bytes;
    ``layers`` are cached layer digests, in order. The archive is an owned output
    (``adapters.outputs``): its PAX global header says envctl wrote it (engines ignore it), and
    a file that does not say so is replaced only with ``force``.
    """
    from envctl.adapters.outputs import DOCKER_ARCHIVE, owned_file

    blob = "blobs/sha256/{}".format
    manifest = [
        {
            "Config": blob(config_digest.split(":")[1]),
            "RepoTags": [repo_tag],
            "Layers": [blob(d.split(":")[1]) for d in layers],
        }
    ]
    files = dict(documents)
    files["manifest.json"] = canonical_json(manifest)
    with (
        owned_file(path, DOCKER_ARCHIVE, force=force, option="--docker-archive") as out,
        tarfile.open(
            fileobj=out,
            mode="w",
            format=tarfile.PAX_FORMAT,
            pax_headers={"envctl.output": DOCKER_ARCHIVE.name},
        ) as archive,
    ):
        written: set[str] = set()
        entries = sorted({*files, *(blob(d.split(":")[1]) for d in layers)})
        for directory in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            archive.addfile(info)
        for name in entries:
            if name in written:
                continue
            written.add(name)
            if name in files:
                _add_bytes(archive, name, files[name], mtime)
                continue
            source = cache.path(name.rsplit("/", 1)[1])
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = source.stat().st_size, mtime, 0o644
            with open(source, "rb") as fh:
                archive.addfile(info, fh)
