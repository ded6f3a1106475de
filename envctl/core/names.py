"""Every name that becomes a path, a tag or a file name, and every digest and URL a lock or a
message carries, checked here and only here.

Pure. Each check is a full match (``re.fullmatch``: ``$`` would accept a trailing newline) and
raises InputError naming where the value came from, the value (cut, see ``core.shown``) and the
grammar, with a hint. Callers check before the value is used, never after.

- ``valid_name(kind, value, where)``: ``env`` (environment, profile and base recipe names: a
  directory under /opt/envctl/envs and part of a tag), ``file`` (one file name: a wheel's name
  from its URL), ``tag`` (an image reference as Docker and OCI write it, ``[HOST[:PORT]/]PATH[:TAG]``)
- ``valid_sha256`` / ``valid_md5`` / ``valid_digest``: hex digests (lower case), ``sha256:<hex>``
- ``valid_url``: a URL a lock may fetch from: an allowed scheme, a host where the scheme needs one,
  no space, no control or format character (a newline must never reach requirements.txt or a
  ``#`` comment)
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from envctl.core.shown import shown
from envctl.errors import EnvctlError, InputError

NameKind = Literal["env", "file", "tag"]

_ENV = r"[a-z0-9][a-z0-9._-]{0,62}"
# one path component: no separator, no leading dot (".", "..", hidden files) or dash (options)
_FILE = r"[A-Za-z0-9_+~!=,@%][A-Za-z0-9._+~!=,@%-]{0,254}"
# github.com/distribution/reference (the grammar Docker and OCI registries use)
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?"
_TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"
_PATH_AND_TAG = rf"{_COMPONENT}(?:/{_COMPONENT})*(?::{_TAG})?"
_REFERENCE = rf"(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_COMPONENT}(?:/{_COMPONENT})*)(?::(?P<tag>{_TAG}))?"

_GRAMMARS: dict[NameKind, tuple[re.Pattern[str], str]] = {
    "env": (
        re.compile(_ENV),
        "lower-case letters, digits, '.', '_' and '-' (at most 63), starting with a letter or digit",
    ),
    "file": (
        re.compile(_FILE),
        "one file name: letters, digits and ._+~!=,@%- (no '/', not starting with '.' or '-')",
    ),
    "tag": (
        re.compile(_REFERENCE),
        "an image name as Docker writes it: [HOST[:PORT]/]lower-case/path[:TAG], e.g. team/torch:v3",
    ),
}
MAX_REFERENCE = 255
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MD5 = re.compile(r"[0-9a-f]{32}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
#: schemes a lock may name: the package indexes, and local folders for offline locks
URL_SCHEMES = ("https", "http", "file")
#: a pip entry may also be a git checkout (conda-lock writes `git+https://...@commit`)
PIP_URL_SCHEMES = (*URL_SCHEMES, "git+https")
MAX_URL = 4096


def valid_name(kind: NameKind, value: object, where: str, error: type[EnvctlError] = InputError) -> str:
    """``value`` when it is a valid ``kind`` of name; else ``error`` naming ``where``."""
    pattern, grammar = _GRAMMARS[kind]
    match = pattern.fullmatch(value) if isinstance(value, str) else None
    ok = match is not None
    if match is not None and kind == "tag":
        domain = match.group("domain")
        # as Docker reads it: a first part without '.' or ':' (other than localhost) is a path
        # component, lower case like the rest
        if domain and not ("." in domain or ":" in domain or domain == "localhost"):
            ok = re.fullmatch(_PATH_AND_TAG, str(value)) is not None
        ok = ok and len(str(value)) <= MAX_REFERENCE
    if not ok:
        what = {"env": "environment name", "file": "file name", "tag": "image name"}[kind]
        raise error(f"{where}: {what} {shown(value)} is not allowed", hint=f"use {grammar}")
    return str(value)


def decimal(text: str, max_digits: int = 19) -> int | None:
    """``text`` as a non-negative integer when it is 1 to ``max_digits`` ASCII digits, else None.

    ``str.isdigit`` is true for "²" and "٣" (``int`` refuses the first), and ``int`` of 5,000
    digits raises: neither may reach ``int``.
    """
    if not (0 < len(text) <= max_digits and text.isascii() and text.isdigit()):
        return None
    return int(text)


def reference_parts(reference: str) -> tuple[str, str]:
    """``(name, tag)`` of a valid image reference; the tag defaults to ``latest``."""
    match = re.fullmatch(_REFERENCE, reference)
    if match is None:
        raise ValueError(f"not an image reference: {shown(reference)}")
    name = reference[: match.start("tag") - 1] if match.group("tag") else reference
    return name, match.group("tag") or "latest"


def valid_sha256(value: object, where: str, error: type[EnvctlError] = InputError) -> str:
    """A sha256 as 64 lower-case hex digits (nothing else can become a path or a ``--hash=``)."""
    if not isinstance(value, str) or _SHA256.fullmatch(value) is None:
        raise error(
            f"{where}: sha256 {shown(value)} is not 64 lower-case hex digits",
            hint="the lock is damaged or was edited; re-create it with envctl lock",
        )
    return value


def valid_md5(value: object, where: str, error: type[EnvctlError] = InputError) -> str:
    """An md5 as 32 lower-case hex digits."""
    if not isinstance(value, str) or _MD5.fullmatch(value) is None:
        raise error(
            f"{where}: md5 {shown(value)} is not 32 lower-case hex digits",
            hint="the lock is damaged or was edited; re-create it with envctl lock",
        )
    return value


def valid_digest(value: object, where: str, error: type[EnvctlError] = InputError) -> str:
    """An image digest ``sha256:<64 lower-case hex>``."""
    if not isinstance(value, str) or _DIGEST.fullmatch(value) is None:
        raise error(
            f"{where}: digest {shown(value)} is not sha256:<64 lower-case hex>",
            hint="copy the digest from `envctl build` or `envctl status`",
        )
    return value


def valid_url(
    value: object,
    where: str,
    error: type[EnvctlError] = InputError,
    schemes: tuple[str, ...] = URL_SCHEMES,
) -> str:
    """A URL with a scheme of ``schemes`` (and a host for http/https), without a fragment, of
    printable characters without spaces; else ``error`` naming ``where``."""
    problem = _url_problem(value, schemes)
    if problem:
        raise error(
            f"{where}: URL {shown(value)} {problem}",
            hint=f"a URL with scheme {', '.join(schemes)}, special characters %-quoted",
        )
    return str(value)


def _url_problem(value: object, schemes: tuple[str, ...]) -> str | None:
    if not isinstance(value, str) or not value:
        return "is not a URL"
    if len(value) > MAX_URL:
        return f"is longer than {MAX_URL} characters"
    if any(c.isspace() or not c.isprintable() for c in value):
        return "holds a space or a control character"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        return f"cannot be parsed ({exc})"
    if parts.scheme not in schemes:
        return f"has scheme {shown(parts.scheme)}, not one of {', '.join(schemes)}"
    if parts.scheme in ("http", "https", "git+https") and not parts.hostname:
        return "names no host"
    if parts.scheme == "file" and not parts.path.startswith("/"):
        return "is not an absolute file:// URL"
    if parts.fragment or "#" in value:
        return "carries a '#' fragment"
    return None
