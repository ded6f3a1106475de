"""Pull a base image from an OCI registry over the distribution API (anonymous, urllib)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envctl.adapters.blob_cache import BlobCache
from envctl.adapters.oci_layout import build_errors
from envctl.core.image import DOCKER_TO_OCI, MEDIA_INDEX, BaseImage, sha256_digest
from envctl.core.image_check import (
    MAX_DOCUMENT_BYTES,
    MAX_INDEX_DEPTH,
    Platform,
    base_image,
    digest_hex,
    load_document,
    parse_config,
    parse_index,
    parse_manifest,
    select_image,
)
from envctl.core.names import valid_digest, valid_name
from envctl.errors import BuildError, BuildFailure

ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
TIMEOUT_S = 30


@dataclass(frozen=True)
class RegistryRef:
    """``host[:port]/repository[:tag|@digest]``."""

    host: str
    repository: str
    reference: str  # tag or digest

    @classmethod
    def parse(cls, text: str) -> RegistryRef:
        """Parse a reference; the host part is required (no implicit Docker Hub)."""
        host, _, rest = text.partition("/")
        if not rest or not ("." in host or ":" in host or host == "localhost"):
            raise BuildError(
                f"{text}: not a registry reference",
                hint="HOST[:PORT]/REPO[:TAG], oci:DIR[:TAG], docker-archive:FILE or docker:NAME",
            )
        # the one check of image names and digests: nothing else reaches a URL path
        if "@" in rest:
            repository, reference = rest.split("@", 1)
            valid_name("tag", f"{host}/{repository}", "--base", BuildError)
            valid_digest(reference, "--base", BuildError)
            return cls(host, repository, reference)
        valid_name("tag", text, "--base", BuildError)
        if ":" in rest.rsplit("/", 1)[-1]:
            repository, reference = rest.rsplit(":", 1)
        else:
            repository, reference = rest, "latest"
        return cls(host, repository, reference)


class RegistryClient:
    """Anonymous reads from one registry; ``insecure`` talks plain HTTP (local registries)."""

    def __init__(self, ref: RegistryRef, insecure: bool = False) -> None:
        self.ref = ref
        self.base = f"{'http' if insecure else 'https'}://{ref.host}/v2/{ref.repository}"
        self.name = f"{ref.host}/{ref.repository}:{ref.reference}"

    def _get(self, path: str, accept: str | None = None) -> Any:
        request = urllib.request.Request(f"{self.base}/{path}")
        if accept:
            request.add_header("Accept", accept)
        try:
            return urllib.request.urlopen(request, timeout=TIMEOUT_S)
        except urllib.error.HTTPError as exc:
            hint = "check the name and tag" if exc.code == 404 else None
            raise BuildError(f"{self.name}: registry answered {exc.code} for {path}", hint) from exc
        except (urllib.error.URLError, OSError) as exc:
            raise BuildFailure(
                f"{self.name}: cannot reach the registry: {exc}",
                hint="is it running? plain HTTP needs --insecure-registry",
            ) from exc

    def _document(self, reference: str) -> tuple[Mapping[str, Any], str, str]:
        with self._get(f"manifests/{reference}", ACCEPT) as response:
            data = response.read(MAX_DOCUMENT_BYTES + 1)
            media_type = response.headers.get("Content-Type", "").split(";")[0]
        where = f"{self.name}: manifest {reference}"
        if len(data) > MAX_DOCUMENT_BYTES:
            raise BuildError(f"{where}: larger than {MAX_DOCUMENT_BYTES} bytes, not read")
        digest = sha256_digest(data)
        if reference.startswith("sha256:") and digest != reference:
            raise BuildError(f"{where}: its digest is {digest}")
        with build_errors():
            document = load_document(data, where)
        return document, DOCKER_TO_OCI.get(media_type, media_type), digest

    def _blob(self, digest: str, cache: BlobCache) -> Path:
        hex_digest = digest_hex(digest, self.name)
        if not cache.has(hex_digest):
            with self._get(f"blobs/{digest}") as response:
                cache.put_stream(response, hex_digest, f"{self.name}: blob {digest}")
        return cache.path(hex_digest)

    def pull(self, cache: BlobCache, architecture: str) -> BaseImage:
        """Fetch the manifest (the one for ``linux/architecture`` of an index), its config and
        every layer (each verified) into the cache."""
        platform = Platform("linux", architecture)
        with build_errors():
            document, media_type, digest = self._document(self.ref.reference)
            for _ in range(MAX_INDEX_DEPTH):
                if media_type != MEDIA_INDEX and "manifests" not in document:
                    break
                where = f"{self.name}: index {digest}"
                entry = select_image(parse_index(document, where), where, platform)
                document, media_type, digest = self._document(entry.digest)
            else:
                raise BuildError(f"{self.name}: indexes nest deeper than {MAX_INDEX_DEPTH}")
            where = f"{self.name}: manifest {digest}"
            manifest = parse_manifest(document, where)
            if manifest.config.size > MAX_DOCUMENT_BYTES:
                raise BuildError(f"{where}: config.size: {manifest.config.size} bytes is no JSON document")
            config_path = self._blob(manifest.config.digest, cache)
            config_where = f"{self.name}: config {manifest.config.digest}"
            config = parse_config(
                load_document(config_path.read_bytes(), config_where), config_where, manifest, platform
            )
            for layer in manifest.layers:
                self._blob(layer.digest, cache)
            return base_image(f"registry:{self.name}", digest, manifest, config)
