"""The lock as values: pinned entries, envctl's lock metadata and the content hash.

Pure: no I/O, no clock. ``content_hash`` is the reuse key of a lock; its inputs are listed
explicitly and serialised as canonical JSON, so changing them is a deliberate, versioned change
(bump ``LOCK_FORMAT``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import unquote

#: Version of envctl's lock semantics (what goes into the content hash and custom_metadata).
LOCK_FORMAT = 1

Manager = Literal["pip", "conda"]


@dataclass(frozen=True)
class LockEntry:
    """One pinned file for one platform: what to fetch, how to verify it, what it needs."""

    manager: Manager
    name: str
    version: str
    platform: str
    url: str
    sha256: str | None = None
    md5: str | None = None
    dependencies: tuple[tuple[str, str], ...] = ()  # (name, spec) pairs, sorted
    build: str | None = None  # conda build string
    categories: tuple[str, ...] = ("main",)
    # The index the resolver took it from; known right after resolving, not stored in the file.
    index: str | None = None

    @property
    def filename(self) -> str:
        """The file name at the end of the URL (a wheel's name carries its tags)."""
        # The PyTorch index quotes local labels: torch-2.5.1%2Bcu121-cp312-...whl
        return unquote(self.url.rsplit("/", 1)[-1].split("#", 1)[0])


@dataclass(frozen=True)
class LockInputs:
    """Everything that decides a lock's content; hashed to decide reuse."""

    profile_hash: str
    matrix_hash: str
    solution_hash: str  # sha256 of the solution's canonical JSON: covers --gpus/--driver/--arch
    exclude_newer: str  # RFC 3339 UTC, e.g. "2026-11-26T14:00:00Z"
    platforms: tuple[str, ...]
    exclude_newer_packages: tuple[tuple[str, str], ...] = ()  # (package, time) moved forward
    find_links: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()  # channel overrides given on the command line
    index_url: str = ""  # default-index override ("" = PyPI)
    format: int = LOCK_FORMAT

    def content_hash(self) -> str:
        """sha256 over canonical JSON of the explicit fields above."""
        payload = {
            "channels": list(self.channels),
            "exclude_newer": self.exclude_newer,
            "exclude_newer_packages": [list(pair) for pair in self.exclude_newer_packages],
            "find_links": list(self.find_links),
            "format": self.format,
            "index_url": self.index_url,
            "matrix_hash": self.matrix_hash,
            "platforms": sorted(self.platforms),
            "profile_hash": self.profile_hash,
            "solution_hash": self.solution_hash,
        }
        return canonical_hash(payload)


def canonical_hash(data: object) -> str:
    """sha256 of the canonical JSON of ``data`` (sorted keys, no whitespace, ASCII)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class LockData:
    """A whole lock: inputs, the content hash they produced, entries, the solution summary."""

    inputs: LockInputs
    content_hash: str
    entries: tuple[LockEntry, ...]
    envctl_version: str
    solution: dict[str, object] = field(default_factory=dict)
    channels: tuple[str, ...] = ()
    # sha256 of the raw inputs (profile bytes, matrix bytes, options): a match lets a re-run
    # skip the solver. Not part of the content hash: a comment edit changes it, not the lock.
    fingerprint: str = ""

    def for_platform(self, platform: str) -> tuple[LockEntry, ...]:
        """The entries of one platform, in lock order."""
        return tuple(entry for entry in self.entries if entry.platform == platform)

    @property
    def platforms(self) -> tuple[str, ...]:
        """The platforms this lock covers."""
        return self.inputs.platforms


@dataclass(frozen=True)
class LockOptions:
    """How to lock: where to write, which platforms, and where packages may come from."""

    output: Path = Path("conda-lock.yml")
    platforms: tuple[str, ...] = ()  # empty: every platform of the solution
    check: bool = False  # only report whether the lock is stale
    upgrade: bool = False  # move exclude-newer forward (for ``upgrade_packages`` only, if given)
    upgrade_packages: tuple[str, ...] = ()
    offline: bool = False
    find_links: tuple[Path, ...] = ()
    channels: tuple[str, ...] = ()  # replace the profile's conda channels (mirrors, file://)
    index_url: str | None = None  # replace PyPI as the default index (a mirror)
    exclude_newer: str | None = None  # explicit cutoff (RFC 3339), else recorded or now
