"""The agent's registry side of a push: fetch the blobs a node lacks from a registry, by digest.

``fetch`` reads one JSON request on stdin: the sources to try in order (a per-group mirror first,
then the registry, each ``http(s)://HOST[:PORT]/v2/REPO``), the ``Authorization`` value to send
(a short-lived pull token or Basic, handed over by the sender; held in memory only, never
written) or ``node_login``, the registry host whose login the node reads itself
(``envctl.node.pull_login``), an optional ``ca`` (PEM certificates trusted for HTTPS besides the
system's store, loaded from memory), and the blobs (digest, size, and the media type for
manifests). Each blob is appended to ``tmp/HEX.partial`` as it arrives, so a broken pull is resumed with ``Range`` by the next one
(the same partial a direct push resumes), and enters ``blobs/`` only once its sha256 matches.

With ``"follow": true`` the request is stdin's first line and the blobs come after it, one JSON
object a line, then ``end``: the sender announces each blob once its own upload of it is done, so
nodes pull the first layers while the last are still going up (one agent run per node, not one
per blob). Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import os
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from typing import Any

from envctl.node.checks import show
from envctl.node.pull_login import NodeLogin, config_paths, find_login
from envctl.node.store import (
    CHUNK,
    AgentError,
    Store,
    check_digest,
    stat_stamp,
    write_file,
)

MAX_REQUEST = 64 << 20  # bytes of the JSON request (an image of 100,000 layers fits)
MAX_SOURCES = 8
MAX_LINE = 4096  # bytes of one announced blob (follow mode): a digest, a size, a media type
MAX_AUTH = 16 << 10  # bytes of one Authorization value (a JWT is a few KB)
MAX_CA = 1 << 20  # bytes of the PEM CA bundle
TRIES = 3  # tries of one blob from one source (each resumes from the partial) before the next
_SOURCE = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]{1,300}/v2/[a-z0-9._/-]{1,255}")
_MEDIA = re.compile(r"[A-Za-z0-9.+/_-]{1,200}")
_AUTH = re.compile(r"(Bearer|Basic) [A-Za-z0-9._~+/=-]{1,16000}")
_HOST = re.compile(r"[A-Za-z0-9.\-:\[\]]{1,300}")


class _Refused(Exception):
    """A source answered something a retry will not change (401, 403, 404)."""

    def __init__(self, code: int, where: str, challenge: str | None = None) -> None:
        super().__init__(f"{where} answered {code}")
        self.code = code
        self.challenge = challenge  # WWW-Authenticate of a 401


class _Pull:
    """How this fetch talks to its sources: the Authorization now, the node's own login (to
    answer a 401 with), and the TLS context (with the request's CA, if any)."""

    def __init__(self, auth: str | None, login: NodeLogin | None, context: ssl.SSLContext | None) -> None:
        self.auth = auth
        self.login = login
        self.context = context


class _Corrupt(Exception):
    """The bytes a source served do not hash to the digest asked for."""


def _request(
    text: bytes, timeout: float, runtime: str | None = None
) -> tuple[list[str], _Pull, list[dict[str, Any]], str | None]:
    """The checked request: sources, how to talk to them, blobs, and a ``ns`` query for mirrors."""
    try:
        doc = json.loads(text.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise AgentError("fetch: the request on stdin is not JSON", "protocol") from None
    if not isinstance(doc, dict):
        raise AgentError("fetch: the request on stdin is not a JSON object", "protocol")
    sources = doc.get("sources")
    if not isinstance(sources, list) or not 0 < len(sources) <= MAX_SOURCES:
        raise AgentError(f"fetch: expected 1 to {MAX_SOURCES} sources", "protocol")
    for source in sources:
        if not isinstance(source, str) or not _SOURCE.fullmatch(source):
            raise AgentError(f"fetch: bad source {show(str(source))}", "protocol")
    auth = doc.get("auth")
    if auth is not None and (not isinstance(auth, str) or len(auth) > MAX_AUTH or not _AUTH.fullmatch(auth)):
        raise AgentError("fetch: the Authorization value is malformed", "protocol")  # never echoed
    ns = doc.get("ns")
    if ns is not None and (not isinstance(ns, str) or not re.fullmatch(r"[A-Za-z0-9.\-:\[\]]{1,300}", ns)):
        raise AgentError(f"fetch: bad ns {show(str(ns))}", "protocol")
    context = _context(doc.get("ca"))
    login_host = doc.get("node_login")
    login = None
    if login_host is not None:
        if not isinstance(login_host, str) or not _HOST.fullmatch(login_host) or auth is not None:
            raise AgentError("fetch: node_login must be a registry host, and comes without auth", "protocol")
        found = find_login(login_host, runtime)
        login = NodeLogin(login_host, found, context, timeout, config_paths(runtime))
    blobs = doc.get("blobs")
    if not isinstance(blobs, list):
        raise AgentError("fetch: expected a list of blobs", "protocol")
    checked = [_blob(blob) for blob in blobs]
    return list(sources), _Pull(auth, login, context), checked, ns


def _context(ca: object) -> ssl.SSLContext | None:
    """The system's trust store plus the request's PEM CA bundle (read from memory), or None."""
    if ca is None:
        return None
    if not isinstance(ca, str) or not 0 < len(ca) <= MAX_CA:
        raise AgentError(f"fetch: ca: expected PEM text of at most {MAX_CA} bytes", "protocol")
    context = ssl.create_default_context()
    try:
        context.load_verify_locations(cadata=ca)
    except (ssl.SSLError, ValueError):
        raise AgentError("fetch: ca: not PEM certificates", "protocol") from None
    return context


def _blob(blob: Any) -> dict[str, Any]:
    """One checked blob of a request: digest, size, and the media type for a manifest."""
    if not isinstance(blob, dict):
        raise AgentError("fetch: a blob is not an object", "protocol")
    size, media = blob.get("size"), blob.get("manifest")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 1 << 62:
        raise AgentError(f"fetch: bad size {show(str(size))}", "protocol")
    if media is not None and (not isinstance(media, str) or not _MEDIA.fullmatch(media)):
        raise AgentError(f"fetch: bad media type {show(str(media))}", "protocol")
    return {"digest": check_digest(str(blob.get("digest"))), "size": size, "manifest": media}


def _announced(stdin: Any) -> Iterator[dict[str, Any]]:
    """``follow`` mode: one blob a line as the sender's upload makes it available, then ``end``.
    A stream that stops before ``end`` is the sender giving up (its upload failed)."""
    while True:
        line = stdin.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise AgentError(f"fetch: an announced blob is longer than {MAX_LINE} bytes", "protocol")
        if not line:
            raise AgentError("fetch: the sender's announcements stopped before their end", "interrupted")
        if line.strip() == b"end":
            return
        try:
            yield _blob(json.loads(line.decode("utf-8")))
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise AgentError("fetch: an announced blob is not JSON", "protocol") from None


def _read_request(stdin: Any) -> tuple[bytes, bool]:
    """The request, and whether blobs follow it a line each (``"follow": true``, the request
    on its own first line); else the request is the whole of stdin."""
    first = stdin.readline(MAX_REQUEST + 1)
    if first.endswith(b"\n"):
        with contextlib.suppress(ValueError, UnicodeDecodeError, RecursionError):
            doc = json.loads(first.decode("utf-8"))
            if isinstance(doc, dict) and doc.get("follow") is True:
                return first, True
    rest = stdin.read(MAX_REQUEST + 1 - len(first))
    if len(first) + len(rest) > MAX_REQUEST:
        raise AgentError(f"stdin holds more than {MAX_REQUEST} bytes", "input")
    return first + rest, False


def cmd_fetch(store: Store, args: argparse.Namespace) -> dict[str, Any]:
    """Fetch every requested blob the store lacks (see the module docstring)."""
    text, follow = _read_request(sys.stdin.buffer)
    sources, pull, listed, ns = _request(text, args.idle_timeout, args.runtime)
    blobs: Iterable[dict[str, Any]] = (
        itertools.chain(listed, _announced(sys.stdin.buffer)) if follow else listed
    )
    fetched, skipped, via = [], [], {}
    written = resumed = 0
    with store.locked(args.lock_timeout, "fetch"):
        for blob in blobs:
            digest = blob["digest"]
            if store.verified(digest):
                skipped.append(digest)
                continue
            got, kept, source = _fetch_blob(store, sources, pull, ns, blob, args.idle_timeout)
            written += got
            resumed += kept
            fetched.append(digest)
            via[digest] = source
    return {
        "fetched": fetched,
        "skipped": skipped,
        "bytes_written": written,
        "resumed_from": resumed,
        "via": via,
    }


def _fetch_blob(
    store: Store,
    sources: list[str],
    pull: _Pull,
    ns: str | None,
    blob: dict[str, Any],
    timeout: float,
) -> tuple[int, int, str]:
    """One blob from the first source that serves it intact: (bytes written, resumed from, source)."""
    digest, size = blob["digest"], blob["size"]
    partial = store.path("tmp", digest[7:] + ".partial")
    first_offset = _partial_size(partial, size)
    written = [0]  # every byte that arrived, also those of tries that broke off
    problems = []
    for source in sources:
        kind = "manifests" if blob["manifest"] else "blobs"
        url = f"{source}/{kind}/{digest}"
        if ns and source != sources[-1]:  # a mirror learns which registry it stands in for
            url += "?" + urllib.parse.urlencode({"ns": ns})
        where = f"{_shown(source)}/{kind}/{digest[:19]}"
        answered = False
        attempt = 0
        while attempt < TRIES:
            attempt += 1
            try:
                _download(partial, url, pull, blob, timeout, where, written)
            except _Refused as exc:
                problems.append(str(exc))
                if exc.code == 401 and pull.login is not None and not answered:
                    answered = True  # the node's own login answers the challenge once per source
                    fresh = pull.login.answer(exc.challenge, source.split("/v2/", 1)[1])
                    if fresh is not None:
                        pull.auth = fresh
                        attempt -= 1
                        continue
                if exc.code in (401, 403):
                    whose = "the pull credentials" if pull.login is None else pull.login.who()
                    raise AgentError(f"{where}: the registry refused {whose} ({exc.code})", "auth") from None
                break  # 404 here: the next source may hold it
            except urllib.error.URLError as exc:
                if not isinstance(exc.reason, ssl.SSLCertVerificationError):
                    problems.append(f"{where}: {_reason(exc)}")
                    if attempt < TRIES:
                        time.sleep(0.2 * attempt)
                    continue
                problems.append(
                    f"{where}: this node does not trust the registry's certificate ({exc.reason.verify_message})"
                )
                break  # a retry will not change it; the next source may be trusted
            except _Corrupt as exc:
                problems.append(str(exc))
                break  # discarded; the next source may serve it intact
            except (OSError, ValueError) as exc:
                problems.append(f"{where}: {_reason(exc)}")
                if attempt < TRIES:
                    time.sleep(0.2 * attempt)
            else:  # verified: only now does it enter the store
                final = store.blob(digest)
                os.replace(partial, final)
                write_file(store.path("stamps", digest[7:]), stat_stamp(os.stat(final)))
                return written[0], first_offset, _shown(source)
    corrupt = any("arrived corrupt" in p for p in problems)
    last = problems[-1] if problems else "no source"
    if corrupt:
        raise AgentError(f"blob {digest} arrived corrupt; discarded: {last}", "corrupt")
    if "does not trust the registry's certificate" in last:
        raise AgentError(f"cannot fetch blob {digest}: {last}", "tls")
    raise AgentError(f"cannot fetch blob {digest}: {last}", "interrupted")


def _partial_size(partial: str, size: int) -> int:
    try:
        have = os.stat(partial).st_size
    except FileNotFoundError:
        return 0
    if have > size:
        os.unlink(partial)
        return 0
    return have


def _download(
    partial: str,
    url: str,
    pull: _Pull,
    blob: dict[str, Any],
    timeout: float,
    where: str,
    counted: list[int],
) -> None:
    """Append the rest of the blob to ``partial`` (``Range`` from what it holds), counting each
    byte in ``counted``.
    Checks the whole file's sha256 once it has ``size`` bytes: a mismatch discards it."""
    size = blob["size"]
    have = _partial_size(partial, size)
    if have == size:
        if _verify(partial, blob["digest"], size):
            return
        raise _Corrupt(
            "{}: blob {} arrived corrupt (kept bytes did not verify)".format(where, blob["digest"])
        )
    request = urllib.request.Request(url, headers={"User-Agent": "envctl-agent"})
    if blob["manifest"]:
        request.add_header("Accept", blob["manifest"])
    if have:
        request.add_header("Range", f"bytes={have}-")
    if pull.auth:
        request.add_unredirected_header("Authorization", pull.auth)
    try:
        response = urllib.request.urlopen(request, timeout=timeout, context=pull.context)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code in (401, 403, 404):
            raise _Refused(exc.code, where, exc.headers.get("WWW-Authenticate")) from None
        if exc.code == 416 and have:  # the partial is not a prefix of this blob: start over
            os.unlink(partial)
        raise
    written = 0
    h = hashlib.sha256()  # hashed as it arrives (and the kept prefix first): no second read
    block = bytearray(CHUNK)
    view = memoryview(block)
    with response, open(partial, "ab+") as fh:
        start = 0
        if response.status == 206:
            start = _range_start(response.headers.get("Content-Range"))
            if start != have:
                raise ValueError(f"asked for bytes from {have}, got a range from {start}")
        fh.truncate(start)  # a 200 is the whole blob again: the partial starts over
        fh.seek(0)
        while fh.tell() < start:
            n = fh.readinto(view[: min(CHUNK, start - fh.tell())])
            if not n:
                break
            h.update(view[:n])
        fh.seek(start)
        while True:
            n = response.readinto(view)
            if not n:
                break
            if start + written + n > size:
                fh.close()
                os.unlink(partial)
                raise _Corrupt(
                    "{}: blob {} arrived corrupt (longer than {} bytes)".format(where, blob["digest"], size)
                )
            fh.write(view[:n])  # written as it arrives: a broken pull leaves a resumable partial
            h.update(view[:n])
            written += n
            counted[0] += n
        fh.flush()
        os.fsync(fh.fileno())
    if start + written < size:
        raise ConnectionError(f"connection closed after {start + written} of {size} bytes")
    if "sha256:" + h.hexdigest() != blob["digest"]:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        raise _Corrupt(
            "{}: blob {} arrived corrupt (sha256 differs); discarded".format(where, blob["digest"])
        )


def _verify(partial: str, digest: str, size: int) -> bool:
    """Does ``partial`` hash to ``digest``? A mismatch removes it (nothing corrupt is kept)."""
    h = hashlib.sha256()
    with open(partial, "rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            h.update(chunk)
    if os.path.getsize(partial) == size and "sha256:" + h.hexdigest() == digest:
        return True
    with contextlib.suppress(FileNotFoundError):
        os.unlink(partial)
    return False


def _range_start(value: str | None) -> int:
    match = re.fullmatch(r"\s*bytes (\d+)-\d+/(\d+|\*)\s*", value or "")
    if match is None:
        raise ValueError("unreadable Content-Range {}".format(show(value or "")))
    return int(match.group(1))


def _shown(source: str) -> str:
    """A source without any user info (never in a message)."""
    parts = urllib.parse.urlsplit(source)
    return (
        "{}://{}{}".format(parts.scheme, parts.hostname or "", f":{parts.port}" if parts.port else "")
        + parts.path
    )


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"answered {exc.code}"
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, socket.timeout):
        return "no data for the idle timeout"
    return show(str(reason))
