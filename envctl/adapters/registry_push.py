"""Push an OCI image to a registry over the distribution API, once, and mint the nodes' pull login.

Only the blobs the registry lacks are uploaded (``HEAD`` first); each goes in one monolithic
upload (``POST`` a session, ``PUT`` the bytes with ``?digest=``), so the registry checks the
digest before it accepts it; the manifest goes last, by digest, so nothing names a blob that is
not there. Requests are authorized as ``registry_auth`` learns from the registry's 401s (Basic, or
bearer tokens for ``pull,push``), with the login the docker CLI would use, and retried through
stamina when the failure is transient (``http_transfer``); an upload cut short starts a new
session, since a half-finished one may already be gone.

``node_authorization`` is what the nodes send: a token scoped to ``pull`` of this repository only
(short-lived, as the token service issues it), or the Basic login when that is all the registry
speaks. The caller hands it to the nodes over their SSH channel's stdin; it is never written.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import io
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from envctl.adapters.docker_config import Credentials, registry_credentials
from envctl.adapters.http_transfer import DEFAULT_POLICY, RetryPolicy, with_retries
from envctl.adapters.registry_auth import USER_AGENT, RegistryAuth
from envctl.core.registry_target import RegistryTarget
from envctl.errors import BuildError, TransportError

TIMEOUT_S = 60


@dataclass(frozen=True)
class Upload:
    """One blob to put: its digest, size, and where its bytes are (or the bytes themselves)."""

    digest: str
    size: int
    path: Path | None = None
    data: bytes | None = None
    media_type: str | None = None  # set for the manifest


@dataclass(frozen=True)
class Pushed:
    """What the push to the registry did."""

    blobs_uploaded: int
    bytes_uploaded: int
    blobs_present: int


class _Told(io.RawIOBase):
    """A blob's file as an upload body: says when it has been read to the end (all sent)."""

    def __init__(self, fh: IO[bytes], at_end: Callable[[], None] | None) -> None:
        self._fh, self._at_end = fh, at_end

    def readable(self) -> bool:
        return True

    def readinto(self, buf: Any) -> int:
        n = self._fh.readinto(buf)  # type: ignore[attr-defined]
        if not n and self._at_end is not None:
            self._at_end()
        return int(n or 0)


class RegistryPusher:
    """Writes one repository of one registry."""

    def __init__(
        self,
        target: RegistryTarget,
        credentials: Callable[[], Credentials | None] | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
        urlopen: Callable[..., Any] = urllib.request.urlopen,
        ca: str | None = None,
    ) -> None:
        self.target = target
        self.policy = policy
        self.scope = f"repository:{target.repository}:pull,push"
        self.pull_scope = f"repository:{target.repository}:pull"
        lookup = credentials or (lambda: registry_credentials(target.host))
        if ca is not None:  # a private CA (--registry-ca): trusted besides the system's store
            from envctl.adapters.registry_ca import context

            urlopen = functools.partial(urlopen, context=context(ca))
        self.ca_given = ca is not None
        self.auth = RegistryAuth(target.host, lookup, target.insecure, policy, urlopen=urlopen)
        self._urlopen = urlopen
        self._auth_lock = threading.Lock()

    # ------------------------------------------------------------------ requests
    def _send(self, method: str, url: str, headers: Mapping[str, str], body: Any = None) -> Any:
        request = urllib.request.Request(
            url, data=body, method=method, headers={"User-Agent": USER_AGENT, **headers}
        )
        with self._auth_lock:  # uploads run in threads; the token cache is one
            authorization = self.auth.header(self.scope)
        if authorization:
            request.add_unredirected_header("Authorization", authorization)
        return self._urlopen(request, timeout=TIMEOUT_S)

    def _call(self, method: str, url: str, headers: Mapping[str, str] | None = None, body: Any = None) -> Any:
        """One request, repeated once with what the registry asks for when it answers 401."""
        try:
            return self._send(method, url, headers or {}, body() if callable(body) else body)
        except urllib.error.HTTPError as exc:
            if exc.code != 401:
                raise
            challenge = exc.headers.get("WWW-Authenticate")
            exc.close()
        with self._auth_lock:
            self.auth.answer(challenge, self.scope)
        return self._send(method, url, headers or {}, body() if callable(body) else body)

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Library errors as envctl errors naming the registry (never the credentials)."""
        where = str(self.target)
        try:
            yield
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise TransportError(
                    where,
                    f"{what}: answered {exc.code}: {self.auth.who()} may not push {self.target.repository}",
                    hint=f"check the login for {self.target.host} (docker login {self.target.host})",
                ) from exc
            raise TransportError(where, f"{what}: answered {exc.code}", hint="retry later") from exc
        except BuildError as exc:  # registry_auth's words for a token service that said no
            raise TransportError(where, exc.message, exc.hint) from exc
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLCertVerificationError):
                given = " (nor by the --registry-ca / registry_ca given)" if self.ca_given else ""
                raise TransportError(
                    where,
                    f"the registry's certificate is not trusted{given}: {reason.verify_message}",
                    hint="give the CA that signed it with --registry-ca FILE (or the inventory's registry_ca); "
                    "--insecure-registry for plain HTTP",
                ) from exc
            raise TransportError(
                where,
                f"{what}: cannot reach the registry: {reason}",
                hint="is it running? plain HTTP needs --insecure-registry",
            ) from exc

    # ------------------------------------------------------------------ the push
    def _exists(self, path: str, what: str, headers: dict[str, str] | None = None) -> bool:
        """``HEAD`` of ``path`` under the repository: True, or False on a 404 (retried as any call)."""

        def head() -> bool:
            try:
                with self._call("HEAD", f"{self.target.base}/{path}", headers):
                    return True
            except urllib.error.HTTPError as exc:
                if exc.code == 404:
                    exc.close()
                    return False
                raise

        with self._errors(f"HEAD {what}"):
            return with_retries(head, self.policy)

    def has_blob(self, digest: str) -> bool:
        """Does the repository hold ``digest`` (``HEAD``)?"""
        return self._exists(f"blobs/{digest}", f"blob {digest[:19]}")

    def upload(self, blob: Upload, on_sent: Callable[[], None] | None = None) -> None:
        """One monolithic upload: a session, then ``PUT`` of every byte with the digest.
        ``on_sent``: called once every byte is handed to the connection (the registry has still
        to store and check them), so the next upload can start filling the link."""

        def once() -> None:
            with self._call(
                "POST", f"{self.target.base}/blobs/uploads/", {"Content-Length": "0"}, b""
            ) as started:
                location = started.headers.get("Location")
            if not location:
                raise TransportError(str(self.target), "the registry started an upload without a Location")
            url = urllib.parse.urljoin(f"{self.target.base}/", location)
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode({"digest": blob.digest})
            headers = {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)}
            with contextlib.ExitStack() as files:

                def body() -> bytes | IO[bytes] | _Told:
                    if blob.data is not None:
                        if on_sent is not None:
                            on_sent()
                        return blob.data
                    assert blob.path is not None
                    return _Told(files.enter_context(blob.path.open("rb")), on_sent)

                with self._call("PUT", url, headers, body):
                    pass

        with self._errors(f"upload of blob {blob.digest[:19]}"):
            with_retries(once, self.policy)

    def put_manifest(self, manifest: Upload) -> None:
        """``PUT`` the manifest under its digest (after every blob it names is there)."""
        assert manifest.data is not None and manifest.media_type is not None
        url = f"{self.target.base}/manifests/{manifest.digest}"
        headers = {"Content-Type": manifest.media_type, "Content-Length": str(manifest.size)}

        def once() -> None:
            with self._call("PUT", url, headers, manifest.data):
                pass

        with self._errors(f"manifest {manifest.digest[:19]}"):
            with_retries(once, self.policy)

    def has_manifest(self, digest: str, media_type: str) -> bool:
        """Does the repository hold the manifest ``digest`` (an earlier push of this image)?
        Asked with its media type: distribution answers 404 for an OCI manifest to ``*/*``."""
        return self._exists(f"manifests/{digest}", f"manifest {digest[:19]}", {"Accept": media_type})

    def push(
        self,
        blobs: list[Upload],
        manifest: Upload,
        on_bytes: Callable[[int], None] | None = None,
        on_blob: Callable[[str], None] | None = None,
        lacks_manifest: bool = False,
    ) -> Pushed:
        """Upload the blobs the registry lacks, then the manifest. ``on_blob(digest)`` says when
        each is there (present already, or uploaded), so nodes can start pulling it; the
        manifest is last. ``lacks_manifest``: the caller's ``has_manifest`` already said no."""
        assert manifest.media_type is not None
        there = on_blob or (lambda digest: None)
        if not lacks_manifest and self.has_manifest(manifest.digest, manifest.media_type):
            for blob in (*blobs, manifest):
                there(blob.digest)
            return Pushed(0, 0, len(blobs) + 1)
        lacking = []
        for blob in blobs:
            if self.has_blob(blob.digest):
                there(blob.digest)
            else:
                lacking.append(blob)

        def put(blob: Upload, sent: threading.Event) -> None:
            try:
                self.upload(blob, on_sent=sent.set)
            finally:
                sent.set()
            there(blob.digest)
            if on_bytes is not None:
                on_bytes(blob.size)

        # One upload streams at a time, in order, so blobs become pullable one after the other;
        # the next starts as soon as the last byte of the one before is sent, while the registry
        # still stores and checks it: the link does not idle between blobs. A failure stops the
        # push, naming its blob.
        with ThreadPoolExecutor(2, thread_name_prefix="registry-upload") as pool:
            started = []
            for blob in lacking:
                sent = threading.Event()
                started.append(pool.submit(put, blob, sent))
                sent.wait()
                if started[-1].done() and started[-1].exception() is not None:
                    break
            for done in started:
                done.result()
        self.put_manifest(manifest)
        there(manifest.digest)
        return Pushed(
            len(lacking) + 1, sum(b.size for b in lacking) + manifest.size, len(blobs) - len(lacking)
        )

    def auth_kind(self) -> str:
        """What the nodes were given, for the report (never the value)."""
        return {"bearer": "bearer token (pull only)", "basic": "basic"}.get(self.auth.scheme(), "anonymous")

    def node_authorization(self) -> str | None:
        """What nodes send to pull: a pull-only token, the Basic login, or None (anonymous)."""
        with self._errors("a pull token for the nodes"), self._auth_lock:
            if self.auth.header(self.scope) is None:
                return None  # the registry never asked this push for a login
            return self.auth.header(self.pull_scope)
