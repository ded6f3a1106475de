"""The lock as values: pinned entries, envctl's lock metadata, the content hash, and the view of
one platform that an image is built from (``locked_env``).

Pure: no I/O, no clock. ``content_hash`` is the reuse key of a lock; its inputs are listed
explicitly and serialised as canonical JSON, so changing them is a deliberate, versioned change
(bump ``LOCK_FORMAT``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

from packaging.utils import canonicalize_name

from envctl.core.names import valid_name
from envctl.core.shown import shown
from envctl.errors import LockError

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
    """A whole lock: every platform's entries and, when envctl wrote it, envctl's metadata.

    A lock written by another tool (conda-lock itself) has no envctl metadata: ``inputs`` is
    None, ``solution`` is empty and ``content_hash`` is derived from the tool's own hashes.
    """

    platforms: tuple[str, ...]
    entries: tuple[LockEntry, ...]
    content_hash: str
    channels: tuple[str, ...] = ()
    inputs: LockInputs | None = None  # None: the file carries no envctl metadata
    envctl_version: str = ""
    solution: Mapping[str, Any] = field(default_factory=dict)  # envctl's solution summary
    # sha256 of the raw inputs (profile bytes, matrix bytes, options): a match lets a re-run
    # skip the solver. Not part of the content hash: a comment edit changes it, not the lock.
    fingerprint: str = ""

    def for_platform(self, platform: str) -> tuple[LockEntry, ...]:
        """The entries of one platform, in lock order."""
        return tuple(entry for entry in self.entries if entry.platform == platform)

    @property
    def written_by_envctl(self) -> bool:
        """Whether envctl's metadata is there (reuse, --check and re-locking need it)."""
        return self.inputs is not None

    @property
    def exclude_newer(self) -> str:
        """The newest upload time any file of the lock may have (RFC 3339), "" when unknown."""
        return self.inputs.exclude_newer if self.inputs is not None else ""

    @property
    def framework_names(self) -> tuple[str, ...]:
        """Names of the frameworks the solution chose (from envctl's summary), else ()."""
        chosen = self.solution.get("frameworks")
        return tuple(chosen) if isinstance(chosen, dict) else ()


#: where every environment lives in an image: ``<ENV_ROOT>/<env name>``
ENV_ROOT = "/opt/envctl/envs"
_CP_TAG = re.compile(r"-cp3(\d+)-")


@dataclass(frozen=True)
class LockedEnv:
    """One platform of a lock, as an image is built from it (a view of ``LockData``).

    Every file carries a sha256 or, in locks of older conda-lock versions, only an md5 (lower
    case); ``with_sha256`` fills in the sha256 of such files once they are downloaded and their
    md5 matched. pip names are normalised (PEP 503).
    """

    path: str  # the lockfile, for messages
    platform: str  # conda subdir, "linux-64"
    files: tuple[LockEntry, ...]  # sorted by (name, manager, filename)
    content_hash: str
    python: str  # "3.11"
    epoch: int  # fixed mtime of every file in the image (seconds since 1970)
    solution: Mapping[str, Any] = field(default_factory=dict)  # envctl's summary, {} if none

    @property
    def cuda(self) -> str | None:
        """CUDA version the lock was solved for, if any."""
        value = self.solution.get("cuda")
        return str(value) if value else None

    @property
    def min_driver(self) -> str | None:
        """Minimum NVIDIA driver the lock needs, if any."""
        value = self.solution.get("min_driver")
        return str(value) if value else None

    @property
    def frameworks(self) -> tuple[str, ...]:
        """``name==version`` of each framework the solution chose."""
        chosen = self.solution.get("frameworks") or {}
        if isinstance(chosen, dict):  # the lock's summary: {name: version}
            return tuple(sorted(f"{name}=={version}" for name, version in chosen.items()))
        if not isinstance(chosen, list):
            return ()
        out = [
            f"{item['name']}=={item['version']}"
            for item in chosen
            if isinstance(item, dict) and "name" in item and "version" in item
        ]
        return tuple(sorted(out))

    @property
    def base_image(self) -> str | None:
        """The profile's ``environment.base_image``, recorded at lock time; None when it named none."""
        value = self.solution.get("base_image")
        return str(value) if value else None

    @property
    def conda_python(self) -> LockEntry | None:
        """The conda ``python`` package, when the environment's interpreter comes from the lock."""
        return next((f for f in self.files if f.manager == "conda" and f.name == "python"), None)

    @property
    def md5_only(self) -> tuple[LockEntry, ...]:
        """The files the lock pins by md5 alone (conda-lock before 2.0 wrote no sha256)."""
        return tuple(f for f in self.files if not f.sha256)

    def require_wheels(self) -> None:
        """LockError naming the first pip entry that is not a wheel (an sdist, a git checkout):
        images are built from wheels, never by running a package's build."""
        for f in self.files:
            if f.manager == "pip" and not f.filename.endswith(".whl"):
                raise LockError(
                    f"{self.path}: {f.name} {f.version} is not a wheel ({f.url[:200]})",
                    hint="envctl installs wheels only: build a wheel of it, serve it from an index, and lock that",
                )

    def with_sha256(self, digests: Mapping[LockEntry, str]) -> LockedEnv:
        """The same environment with the sha256 of each md5-only file in ``digests`` filled in."""
        files = tuple(
            replace(f, sha256=digests[f]) if not f.sha256 and f in digests else f for f in self.files
        )
        return replace(self, files=files)

    def env_name(self, override: str | None = None) -> str:
        """The environment's name: the option (``--name``), else the solution's profile, else
        ``default``; it becomes a directory of the image and part of its tag, so it is checked
        (``core.names``): ``../../etc`` or a profile named like a path is an InputError."""
        if override:
            return valid_name("env", override, "--name")
        profile = self.solution.get("profile")
        if profile is None:
            return "default"
        return valid_name("env", profile, f"{self.path}: the lock's profile name (or pass --name)")

    def env_prefix(self, override: str | None = None) -> str:
        """Where the environment lives in the image."""
        return f"{ENV_ROOT}/{self.env_name(override)}"


def locked_env(lock: LockData, platform: str, *, source: str, fallback_epoch: int = 0) -> LockedEnv:
    """The part of ``lock`` that an image for ``platform`` is built from.

    ``source`` names the lockfile in errors. The image's fixed time is the lock's exclude-newer
    time (no file in it can be newer: a fair, machine-independent build time), else
    ``fallback_epoch``. Raises LockError when the platform is missing, a file has neither a
    sha256 nor an md5 (pip files need a sha256) or the Python cannot be told.
    """
    files = []
    for entry in lock.for_platform(platform):
        if not entry.sha256 and not (entry.md5 and entry.manager == "conda"):
            raise LockError(
                f"{source}: package {entry.name} {entry.version} has no "
                + ("sha256" if entry.manager == "pip" else "sha256 or md5"),
                hint="every file in a lock must carry a hash to verify it by; re-lock",
            )
        name = canonicalize_name(entry.name) if entry.manager == "pip" else entry.name
        sha256 = entry.sha256.lower() if entry.sha256 else None
        md5 = entry.md5.lower() if entry.md5 else None
        files.append(replace(entry, name=name, sha256=sha256, md5=md5))
    if not files:
        raise LockError(
            f"{source}: no packages for platform {platform}",
            hint=f"the lock covers: {', '.join(lock.platforms) or 'none'}",
        )
    python = _python_of(lock.solution.get("python"), files)
    if python and re.fullmatch(r"\d{1,3}\.\d{1,3}", python) is None:  # it becomes lib/pythonX.Y/
        raise LockError(
            f"{source}: the lock's Python {shown(python)} is not a version like 3.11", hint="re-lock"
        )
    if not python:
        raise LockError(
            f"{source}: cannot tell which Python the lock is for",
            hint="the lock needs envctl's solution summary (python), a conda python or cpXY wheels",
        )
    epoch = epoch_of(lock.exclude_newer)
    return LockedEnv(
        path=source,
        platform=platform,
        files=tuple(sorted(files, key=lambda f: (f.name, f.manager, f.filename))),
        content_hash=lock.content_hash,
        python=python,
        epoch=fallback_epoch if epoch is None else epoch,
        solution=lock.solution,
    )


def epoch_of(when: str) -> int | None:
    """An RFC 3339 time as seconds since 1970 (UTC when it has no zone); None if it is not one."""
    if not when.strip():
        return None
    try:
        moment = datetime.fromisoformat(when.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0, int(moment.timestamp()))


def _python_of(solved: object, files: list[LockEntry]) -> str:
    """``X.Y``: a conda python's (it is the interpreter), else the solution's, else the one cpXY
    tag of the wheels."""
    for item in files:
        if item.manager == "conda" and item.name == "python":
            return ".".join(item.version.split(".")[:2])
    if solved:
        return ".".join(str(solved).split(".")[:2])
    minors = {m.group(1) for f in files if (m := _CP_TAG.search(f.filename))}
    return f"3.{minors.pop()}" if len(minors) == 1 else ""


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
