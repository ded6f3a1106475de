"""The agent's error and the checks of everything it is handed. Standard library only.

Arguments, stream headers, stdin documents, manifests and state records all come from outside
the node and are checked here before they become a path, a name or a number. Patterns are full
matches (``re.fullmatch``: ``^...$`` would accept a trailing newline), sizes are bounded before
anything is read, and every echoed value is cut (``show``) so a hostile name cannot turn an error
into megabytes.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

ENV_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
#: absolute, printable, no longer than PATH_MAX: what a store, prefix root or socket may be
_PATH = re.compile(r"/[^\x00-\x1f\x7f]{0,4095}")
_TEXT = re.compile(r"[^\x00-\x1f\x7f]{0,200}")
ECHO = 200  # characters of a hostile value an error message quotes
MAX_JSON = 16 << 20  # bytes of a manifest blob or a stdin document (OCI manifests stay < 4 MiB)


class AgentError(Exception):
    """A failure reported to the caller as ``{"error": ..., "kind": ...}``."""

    def __init__(self, message: str, kind: str = "failed") -> None:
        super().__init__(message)
        self.kind = kind


def show(value: object, limit: int = ECHO) -> str:
    """``repr`` of a value as an error quotes it: cut to ``limit`` characters, length said."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


def check_digest(digest: str) -> str:
    """Accept only ``sha256:<64 hex>`` (names of files in the store)."""
    if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
        raise AgentError(f"not a sha256 digest: {show(digest)}", "input")
    return digest


def check_env(name: str) -> str:
    """Accept only names that are safe as a path component and an image tag."""
    if not isinstance(name, str) or not ENV_NAME.fullmatch(name):
        raise AgentError(f"bad environment name {show(name)}", "input")
    return name


def check_path(value: str) -> str:
    """An absolute path without control characters (store, prefix root)."""
    if not _PATH.fullmatch(value):
        raise AgentError(f"expected an absolute path, got {show(value)}", "input")
    return value


def check_text(value: str) -> str:
    """A short printable string (who pushed, an engine's socket URL)."""
    if not _TEXT.fullmatch(value):
        raise AgentError(f"expected up to 200 printable characters, got {show(value)}", "input")
    return value


def _number(value: str, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise AgentError(f"{what}: expected a number, got {show(value)}", "input") from None
    if not math.isfinite(number) or number < 0:
        raise AgentError(f"{what}: expected a finite number >= 0, got {show(value)}", "input")
    return number


def seconds(value: str) -> float:
    """A timeout in seconds: finite, >= 0."""
    return _number(value, "seconds")


def hours(value: str) -> float:
    """An age in hours: finite, >= 0."""
    return _number(value, "hours")


def count(value: str) -> int:
    """A positive whole number (a limit)."""
    if not re.fullmatch(r"[0-9]{1,19}", value) or int(value) < 1:
        raise AgentError(f"expected a whole number >= 1, got {show(value)}", "input")
    return int(value)


def read_stdin(limit: int = MAX_JSON) -> bytes:
    """All of stdin, refused past ``limit`` bytes (the sender is not trusted either)."""
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise AgentError(f"stdin holds more than {limit} bytes", "input")
    return data


def parse_json(data: bytes, what: str) -> Any:
    """A JSON document, or AgentError naming ``what`` (deep nesting included)."""
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:
        raise AgentError(f"{what} is not valid JSON: {show(str(exc))}", "input") from None


def check_record(record: Any, where: str) -> dict[str, Any]:
    """One activation record: a ``digest`` at least; ``when``, ``by`` and the runtime's facts
    (``path``, ``fingerprint``, ``image_id``) typed when present. Other keys pass untouched."""
    if not isinstance(record, dict):
        raise AgentError(f"{where}: expected an object, got {show(type(record).__name__)}", "input")
    if not isinstance(record.get("digest"), str) or not DIGEST.fullmatch(record["digest"]):
        raise AgentError(f"{where}.digest: not a sha256 digest: {show(record.get('digest'))}", "input")
    when = record.get("when")
    if when is not None and (
        isinstance(when, bool) or not isinstance(when, (int, float)) or not math.isfinite(when)
    ):
        raise AgentError(f"{where}.when: expected a time, got {show(when)}", "input")
    for key in ("by", "path", "fingerprint", "image_id"):
        if key in record and not isinstance(record[key], (str, type(None))):
            raise AgentError(f"{where}.{key}: expected a string, got {show(record[key])}", "input")
    return record


def manifest_blobs(manifest: Any, digest: str) -> tuple[str, list[str]]:
    """The config digest and layer digests of an image manifest, each one checked."""
    config = manifest.get("config") if isinstance(manifest, dict) else None
    layers = manifest.get("layers") if isinstance(manifest, dict) else None
    if (
        not isinstance(config, dict)
        or not isinstance(layers, list)
        or not all(isinstance(layer, dict) for layer in layers)
    ):
        raise AgentError(
            f"manifest {digest} is not an image manifest (config and layers with digests)", "input"
        )
    digests: list[str] = []
    for d in [config.get("digest")] + [layer.get("digest") for layer in layers]:
        if not isinstance(d, str) or not DIGEST.fullmatch(d):
            raise AgentError(f"manifest {digest}: not a sha256 digest: {show(d)}", "input")
        digests.append(d)
    return digests[0], digests[1:]
