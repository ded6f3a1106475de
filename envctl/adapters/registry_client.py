"""Pull a base image from an OCI registry over the distribution API (urllib).

Requests are authorized the way the registry asks (``registry_auth``: anonymous, Basic or bearer
tokens, with the login the docker CLI would use), retried when the failure is transient and, for
blobs, resumed where a dropped connection left them (``http_transfer``). Every blob is verified
against its digest before it enters the cache.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from envctl.adapters.blob_cache import BlobCache, PartialRefused
from envctl.adapters.docker_config import DOCKER_HUB_HOSTS, Credentials, registry_credentials
from envctl.adapters.http_transfer import (
    DEFAULT_POLICY,
    BodyChanged,
    GaveUp,
    ResumingBody,
    RetryPolicy,
    with_retries,
)
from envctl.adapters.oci_layout import build_errors
from envctl.adapters.registry_auth import USER_AGENT, RegistryAuth
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
        if host in DOCKER_HUB_HOSTS and "/" not in repository:
            repository = f"library/{repository}"  # docker.io/python means library/python
        return cls(host, repository, reference)

    @property
    def api_host(self) -> str:
        """Where the distribution API answers (Docker Hub's is not ``docker.io``)."""
        return "registry-1.docker.io" if self.host in DOCKER_HUB_HOSTS else self.host


class RegistryClient:
    """Reads from one registry; ``insecure`` talks plain HTTP (local registries)."""

    def __init__(
        self,
        ref: RegistryRef,
        insecure: bool = False,
        credentials: Callable[[], Credentials | None] | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self.ref = ref
        self.base = f"{'http' if insecure else 'https'}://{ref.api_host}/v2/{ref.repository}"
        self.name = f"{ref.host}/{ref.repository}:{ref.reference}"
        self.scope = f"repository:{ref.repository}:pull"
        self.policy = policy
        lookup = credentials or (lambda: registry_credentials(ref.host))
        self.auth = RegistryAuth(ref.host, lookup, insecure, policy)

    def _open(self, path: str, headers: Mapping[str, str]) -> Any:
        """One GET, repeated once with what the registry asks for when it answers 401."""
        try:
            return self._send(path, headers)
        except urllib.error.HTTPError as exc:
            if exc.code != 401:
                raise
            challenge = exc.headers.get("WWW-Authenticate")
            exc.close()
        self.auth.answer(challenge, self.scope)
        return self._send(path, headers)

    def _send(self, path: str, headers: Mapping[str, str]) -> Any:
        request = urllib.request.Request(f"{self.base}/{path}", headers={"User-Agent": USER_AGENT, **headers})
        authorization = self.auth.header(self.scope)
        if authorization:
            # not sent on along a redirect: blob storage elsewhere must not see the registry's token
            request.add_unredirected_header("Authorization", authorization)
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)

    @contextlib.contextmanager
    def _errors(self, path: str) -> Iterator[None]:
        """Library errors of a request for ``path`` as envctl errors naming the registry."""
        try:
            yield
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc.code, path) from exc
        except BodyChanged as exc:
            raise PartialRefused(f"{self.name}: {path}: {exc}", hint="retry") from exc
        except GaveUp as exc:
            raise BuildFailure(f"{self.name}: {path}: {exc}", hint="retry") from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                raise BuildFailure(
                    f"{self.name}: the registry's certificate is not trusted: {reason.verify_message}",
                    hint="add its CA to the system's store (or SSL_CERT_FILE); "
                    "--insecure-registry only for plain HTTP",
                ) from exc
            raise BuildFailure(
                f"{self.name}: cannot reach the registry: {reason}",
                hint="is it running? plain HTTP needs --insecure-registry",
            ) from exc

    def _http_error(self, code: int, path: str) -> BuildError:
        where = f"{self.name}: registry answered {code} for {path}"
        if code in (401, 403):
            return BuildFailure(
                f"{where}: {self.auth.who()} may not pull {self.ref.repository}",
                hint=f"check the login for {self.ref.host} (docker login {self.ref.host})",
            )
        if code == 404:
            return BuildError(where, "check the name and tag")
        if code == 429 or code >= 500:
            return BuildFailure(f"{where} ({self.policy.attempts} tries)", hint="retry later")
        return BuildError(where)

    def _document(self, reference: str) -> tuple[Mapping[str, Any], str, str]:
        path = f"manifests/{reference}"

        def fetch() -> tuple[bytes, str]:
            with self._open(path, {"Accept": ACCEPT}) as response:
                data = response.read(MAX_DOCUMENT_BYTES + 1)
                return data, response.headers.get("Content-Type", "").split(";")[0]

        with self._errors(path):
            data, media_type = with_retries(fetch, self.policy)
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
        path = f"blobs/{digest}"

        @contextlib.contextmanager
        def open_at(offset: int) -> Iterator[IO[bytes]]:
            with self._errors(path), ResumingBody(lambda h: self._open(path, h), self.policy, offset) as body:
                yield io.BufferedReader(body)

        def mismatch(actual: str) -> BuildError:
            return BuildError(f"{self.name}: blob {digest}: sha256 is {actual}, expected {hex_digest}")

        return cache.download(hex_digest, open_at, mismatch)

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
