"""Pull a base image from an OCI registry over the distribution API (anonymous, urllib)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from envctl.adapters.blob_cache import BlobCache
from envctl.adapters.oci_layout import base_from_documents, digest_hex, pick_platform
from envctl.core.image import DOCKER_TO_OCI, MEDIA_INDEX, BaseImage, sha256_digest
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
        if "@" in rest:
            repository, reference = rest.split("@", 1)
        elif ":" in rest.rsplit("/", 1)[-1]:
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

    def _document(self, reference: str) -> tuple[dict[str, Any], str, str]:
        with self._get(f"manifests/{reference}", ACCEPT) as response:
            data = response.read()
            media_type = response.headers.get("Content-Type", "").split(";")[0]
        digest = sha256_digest(data)
        if reference.startswith("sha256:") and digest != reference:
            raise BuildError(f"{self.name}: manifest digest {digest} is not {reference}")
        document = json.loads(data)
        return document, DOCKER_TO_OCI.get(media_type, media_type), digest

    def _blob(self, digest: str, cache: BlobCache) -> None:
        hex_digest = digest_hex(digest)
        if cache.has(hex_digest):
            return
        with self._get(f"blobs/{digest}") as response:
            cache.put_stream(response, hex_digest, f"{self.name}: blob {digest}")

    def pull(self, cache: BlobCache, architecture: str) -> BaseImage:
        """Fetch the manifest, config and every layer (verified) into the cache."""
        document, media_type, digest = self._document(self.ref.reference)
        if media_type == MEDIA_INDEX or "manifests" in document:
            entry = pick_platform(document, architecture, self.name)
            document, media_type, digest = self._document(entry["digest"])
        self._blob(document["config"]["digest"], cache)
        config = json.loads(cache.path(digest_hex(document["config"]["digest"])).read_bytes())
        for layer in document.get("layers") or []:
            self._blob(layer["digest"], cache)
        return base_from_documents(f"registry:{self.name}", document, digest, config)
