"""What decides a lock and what it records.

The platforms to lock, the sources checked before anything runs, the ``LockInputs`` whose hash
decides reuse (the recorded exclude-newer time is kept, so a re-lock stays reproducible; only
``--upgrade`` moves it), the fingerprint of the raw input bytes that lets an untouched profile
skip even the solver, and the summary of the solution kept in the lock.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from envctl import __version__
from envctl.adapters.files import read_bytes
from envctl.core.lock import LockInputs, LockOptions, canonical_hash
from envctl.core.names import valid_url
from envctl.core.shown import shown
from envctl.core.solution import PlatformRequest, Solution
from envctl.errors import EnvctlError, InputError


def select_platforms(solution: Solution, platforms: Sequence[str]) -> tuple[PlatformRequest, ...]:
    """The requests of ``platforms`` (all of the solution's when empty); InputError on others."""
    if not platforms:
        return solution.requests
    known = {r.platform for r in solution.requests}
    unknown = [p for p in platforms if p not in known]
    if unknown:
        raise InputError(
            f"--platform {', '.join(unknown)}: not a platform of profile {solution.profile}",
            hint=f"choose from {', '.join(sorted(known))}",
        )
    return tuple(r for r in solution.requests if r.platform in platforms)


#: a cutoff may lie this far ahead of this machine's clock (another machine's clock may be ahead)
FUTURE_SLACK = timedelta(days=1)
_PACKAGE = re.compile(r"[A-Za-z0-9]|[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]")  # PEP 508 names
_CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(?:/[A-Za-z0-9][A-Za-z0-9._-]*)*")


def check_sources(options: LockOptions, requests: Sequence[PlatformRequest]) -> None:
    """The options' cutoff, indexes, channels and local sources are usable (InputError, exit 2,
    before anything runs)."""
    if options.exclude_newer:
        check_cutoff(options.exclude_newer)
    if options.index_url:
        valid_url(options.index_url, "--index-url", schemes=("https", "http", "file"))
    for channel in options.channels:
        if "://" in channel:
            valid_url(channel, "--channel", schemes=("https", "http", "file"))
        elif _CHANNEL.fullmatch(channel) is None:
            raise InputError(
                f"--channel {shown(channel)}: not a channel name or URL",
                hint="e.g. --channel conda-forge or --channel file:///srv/channel",
            )
    for name in options.upgrade_packages:
        if _PACKAGE.fullmatch(name) is None:
            raise InputError(f"--upgrade {shown(name)}: not a package name", hint="e.g. --upgrade numpy")
    for folder in options.find_links:
        if not folder.is_dir():
            raise InputError(
                f"--find-links {folder}: no such directory", hint="point it at a folder of wheels"
            )
    if options.offline and not options.find_links and any(r.requirements for r in requests):
        raise InputError(
            "--offline needs --find-links DIR (a local wheelhouse)",
            hint="envctl lock PROFILE --offline --find-links ./wheels",
        )


def check_cutoff(text: str) -> datetime:
    """An ``--exclude-newer`` time: RFC 3339 (UTC when it names no zone), not in the future."""
    hint = "e.g. --exclude-newer 2025-01-01T00:00:00Z (a time in the past)"
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--exclude-newer {shown(text)}: not an RFC 3339 time", hint=hint) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if moment > datetime.now(timezone.utc) + FUTURE_SLACK:
        raise InputError(
            f"--exclude-newer {shown(text)}: lies in the future; no file is newer than now",
            hint=hint,
        )
    if moment.year < 1990:
        raise InputError(f"--exclude-newer {shown(text)}: before any package index existed", hint=hint)
    return moment


def check_upgrades(options: LockOptions, names: set[str]) -> None:
    """Every ``--upgrade PACKAGE`` is a package of the resolved lock (PEP 503 names)."""
    from packaging.utils import canonicalize_name

    missing = [p for p in options.upgrade_packages if canonicalize_name(p) not in names]
    if missing:
        raise InputError(
            f"--upgrade {', '.join(shown(p) for p in missing)}: not a package of this lock",
            hint="name a package the lock holds (see envctl export LOCK --format requirements)",
        )


def now() -> str:
    """This second, UTC, as RFC 3339 (a new lock's exclude-newer time)."""
    return datetime.now(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def lock_inputs(
    solution: Solution,
    requests: Sequence[PlatformRequest],
    options: LockOptions,
    recorded: LockInputs | None,
    *,
    profile_hash: str,
    matrix_hash: str,
) -> LockInputs:
    """The inputs of this lock; ``recorded`` (the existing lock's) keeps its cutoff unless upgraded."""
    full_upgrade = options.upgrade and not options.upgrade_packages
    if options.exclude_newer:
        exclude_newer = options.exclude_newer
    elif recorded is not None and not full_upgrade:
        exclude_newer = recorded.exclude_newer
    else:
        exclude_newer = now()
    per_package = dict(recorded.exclude_newer_packages) if recorded is not None and not full_upgrade else {}
    if options.upgrade:
        per_package.update({name: now() for name in options.upgrade_packages})
    return LockInputs(
        profile_hash=profile_hash,
        matrix_hash=matrix_hash,
        solution_hash=canonical_hash(solution.to_dict()),
        exclude_newer=exclude_newer,
        platforms=tuple(r.platform for r in requests),
        exclude_newer_packages=tuple(sorted(per_package.items())),
        find_links=tuple(str(p.resolve()) for p in options.find_links),
        channels=options.channels,
        index_url=options.index_url or "",
    )


def lock_channels(requests: Sequence[PlatformRequest], options: LockOptions) -> tuple[str, ...]:
    """The conda channels the lock records: the overrides, else the requests' in first-seen order."""
    if options.channels:
        return options.channels
    seen: dict[str, None] = {}
    for request in requests:
        seen.update(dict.fromkeys(request.conda_channels))
    return tuple(seen)


def fingerprint(
    profile: Path,
    options: LockOptions,
    matrix_dir: Path | None,
    gpus: tuple[str, ...],
    driver: str | None,
    arch: tuple[str, ...],
) -> str:
    """sha256 over the raw inputs of a lock; "" when they cannot be read (the solver reports)."""
    from envctl.adapters.matrix_files import default_matrix_dir, matrix_hash

    try:
        directory = (matrix_dir or default_matrix_dir()).resolve()
        raw: dict[str, object] = {
            "profile": hashlib.sha256(read_bytes(profile, "profile")).hexdigest(),
            "matrix": matrix_hash(directory),
            "matrix_dir": str(directory),
        }
    except (OSError, EnvctlError):
        return ""
    raw.update(
        {
            "targets": {"gpus": list(gpus), "driver": driver, "arch": list(arch)},
            "platforms": list(options.platforms),
            "offline": options.offline,
            "find_links": [str(p.resolve()) for p in options.find_links],
            "channels": list(options.channels),
            "index_url": options.index_url or "",
            "exclude_newer": options.exclude_newer or "",
            "envctl": __version__,
        }
    )
    return canonical_hash(raw)


def solution_summary(solution: Solution, base_image: str | None = None) -> dict[str, Any]:
    """The part of the solution worth keeping in the lock's metadata, and the profile's base
    image (only when it names one: locks of other profiles stay as they were)."""
    summary = {
        "schema": "envctl.solution-summary/1",
        "profile": solution.profile,
        "python": solution.python,
        "platforms": list(solution.platforms),
        "frameworks": {f.name: f.version for f in solution.frameworks},
        "builds": {f.name: {p: b.variant for p, b in f.builds.items()} for f in solution.frameworks},
        "cuda": solution.cuda,
        "cudnn": solution.cudnn,
        "nccl": solution.nccl,
        "blas": solution.blas,
        "min_driver": solution.min_driver,
        "driver_mode": solution.driver_mode,
        "gpus": [g.name for g in solution.gpus],
        "matrix_version": solution.matrix_version,
    }
    if base_image:
        summary["base_image"] = base_image
    return summary
