"""`envctl lock`: solve -> resolve every platform (uv + rattler) -> check -> write atomically.

A content hash over the inputs (profile, matrix, solution, exclude-newer, sources) decides reuse:
unchanged inputs reuse the lock without resolving. Before that, a fingerprint of the raw input
bytes lets an untouched profile skip even the solver. A re-lock after an input change keeps the
recorded exclude-newer time, so it stays reproducible; only ``upgrade`` moves it forward.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from envctl import __version__
from envctl.core.lock import LockData, LockEntry, LockInputs, LockOptions, canonical_hash
from envctl.core.solution import PlatformRequest, Solution
from envctl.errors import InputError, LockCheckError, LockError

if TYPE_CHECKING:
    from envctl.adapters.lockfile import LockHeader

Status = Literal["written", "reused", "fresh", "stale"]


@dataclass(frozen=True)
class PlatformSummary:
    """What one platform of the lock holds."""

    platform: str
    pip: int
    conda: int
    cuda: str | None = None
    cudnn: str | None = None
    nccl: str | None = None
    frameworks: tuple[str, ...] = ()  # "torch 2.5.1+cu121"


@dataclass(frozen=True)
class LockResult:
    """The outcome of one `envctl lock` run (schema ``envctl.lock/1`` in JSON)."""

    path: Path
    status: Status
    content_hash: str
    exclude_newer: str
    platforms: tuple[PlatformSummary, ...] = ()
    reason: str = ""  # why a lock is stale or was re-resolved
    warnings: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """Stable JSON form."""
        return {
            "schema": "envctl.lock/1",
            "path": str(self.path),
            "status": self.status,
            "content_hash": self.content_hash,
            "exclude_newer": self.exclude_newer,
            "reason": self.reason,
            "platforms": [
                {
                    "platform": p.platform,
                    "pip": p.pip,
                    "conda": p.conda,
                    "cuda": p.cuda,
                    "cudnn": p.cudnn,
                    "nccl": p.nccl,
                    "frameworks": list(p.frameworks),
                }
                for p in self.platforms
            ],
            "warnings": list(self.warnings),
        }


def lock_profile(
    profile: Path,
    options: LockOptions,
    *,
    matrix_dir: Path | None = None,
    gpus: tuple[str, ...] = (),
    driver: str | None = None,
    arch: tuple[str, ...] = (),
) -> LockResult:
    """Solve ``profile`` and lock the solution (see ``lock_solution``).

    When the profile's bytes, the matrix's bytes and the options are those recorded in the lock
    (its fingerprint), the solution cannot have changed: the lock is reused without solving.
    """
    from envctl.adapters import ledger

    with ledger.recording("lock", str(profile)) as entry:
        fingerprint = _fingerprint(profile, options, matrix_dir, gpus, driver, arch)
        result = _unchanged(options, fingerprint) if fingerprint and not options.upgrade else None
        if result is None:
            from envctl.services.solve.solve import solve_profile_file

            outcome = solve_profile_file(profile, matrix_dir=matrix_dir, gpus=gpus, driver=driver, arch=arch)
            result = lock_solution(
                outcome.solution,
                options,
                profile_hash=outcome.profile_hash,
                matrix_hash=outcome.matrix_hash,
                fingerprint=fingerprint,
            )
        entry.update(
            subject=result.content_hash, outcome=result.status, file=str(result.path), profile=str(profile)
        )
        return result


def _fingerprint(
    profile: Path,
    options: LockOptions,
    matrix_dir: Path | None,
    gpus: tuple[str, ...],
    driver: str | None,
    arch: tuple[str, ...],
) -> str:
    """sha256 over the raw inputs of a lock; "" when they cannot be read (the solver reports)."""
    import hashlib

    from envctl.adapters.matrix_files import default_matrix_dir, matrix_hash
    from envctl.errors import EnvctlError

    try:
        directory = (matrix_dir or default_matrix_dir()).resolve()
        raw: dict[str, object] = {
            "profile": hashlib.sha256(profile.read_bytes()).hexdigest(),
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


def _unchanged(options: LockOptions, fingerprint: str) -> LockResult | None:
    """The reuse (or --check) result when the lock's fingerprint matches, else None."""
    from envctl.adapters.lockfile import read_header

    try:
        header = read_header(options.output)
    except LockError:
        return None  # missing or bad: the full path reports it
    if header.fingerprint != fingerprint:
        return None
    inputs = header.inputs
    summaries = tuple(
        summarize(platform, [e for e in header.entries if e.platform == platform], header.frameworks)
        for platform in inputs.platforms
    )
    status: Status = "fresh" if options.check else "reused"
    return LockResult(options.output, status, header.content_hash, inputs.exclude_newer, summaries)


def lock_solution(
    solution: Solution,
    options: LockOptions,
    *,
    profile_hash: str,
    matrix_hash: str,
    fingerprint: str = "",
) -> LockResult:
    """Lock ``solution`` into ``options.output``, reusing it when the inputs are unchanged."""
    from envctl.adapters.lockfile import read_header, write_lock

    requests = _select(solution, options.platforms)
    _validate_sources(options, requests)
    header: LockHeader | None = None
    stale_reason = "no lockfile yet"
    if options.output.exists():
        try:
            header = read_header(options.output)
        except LockError as exc:
            if not options.check:
                raise LockError(exc.message, hint=f"remove {options.output} to lock from scratch") from exc
            stale_reason = exc.message
    inputs = _inputs(solution, requests, options, header, profile_hash=profile_hash, matrix_hash=matrix_hash)
    content_hash = inputs.content_hash()
    if header is not None:
        stale_reason = "inputs changed" if header.content_hash != content_hash else ""
    if options.check:
        status: Status = "stale" if stale_reason else "fresh"
        return LockResult(options.output, status, content_hash, inputs.exclude_newer, reason=stale_reason)
    if header is not None and not stale_reason and not options.upgrade:
        names = _framework_names(solution)
        summaries = tuple(
            summarize(r.platform, [e for e in header.entries if e.platform == r.platform], names)
            for r in requests
        )
        return LockResult(options.output, "reused", content_hash, inputs.exclude_newer, platforms=summaries)

    # conda_lock's import (~0.5-2 s: its package pulls in its whole CLI) overlaps the resolve,
    # which waits on uv subprocesses and rattler's native solver.
    if any(r.requirements for r in requests):
        from envctl.adapters.uv import find_uv

        find_uv()  # sysconfig's lazy set-up is not thread-safe: do it before any thread starts
    preload = threading.Thread(target=_preload_lockfile_models, name="envctl-preload", daemon=True)
    preload.start()
    entries = _resolve_all(requests, options, inputs)
    from envctl.core.lockcheck import check_platform

    problems = [
        f"{r.platform}: {p}"
        for r in requests
        for p in check_platform(entries[r.platform], r, offline=options.offline)
    ]
    if problems:
        raise LockCheckError(
            "lock check failed: " + "; ".join(problems),
            hint="the resolved closure disagrees with the solution; fix the profile's pins/indexes",
        )
    all_entries = tuple(entry for r in requests for entry in entries[r.platform])
    data = LockData(
        inputs=inputs,
        content_hash=content_hash,
        entries=all_entries,
        envctl_version=__version__,
        solution=solution_summary(solution),
        channels=_channels(requests, options),
        fingerprint=fingerprint,
    )
    preload.join()
    write_lock(options.output, data)
    names = _framework_names(solution)
    summaries = tuple(summarize(r.platform, entries[r.platform], names) for r in requests)
    return LockResult(
        options.output,
        "written",
        content_hash,
        inputs.exclude_newer,
        platforms=summaries,
        reason=stale_reason,
        warnings=solution.warnings,
    )


def _preload_lockfile_models() -> None:
    import contextlib

    from envctl.adapters.lockfile import conda_lock_lockfile

    # Only a warm-up: write_lock imports again and reports any real ImportError.
    with contextlib.suppress(ImportError):
        conda_lock_lockfile()


def _select(solution: Solution, platforms: Sequence[str]) -> tuple[PlatformRequest, ...]:
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


def _validate_sources(options: LockOptions, requests: Sequence[PlatformRequest]) -> None:
    if options.exclude_newer:
        try:
            datetime.fromisoformat(options.exclude_newer.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(
                f"--exclude-newer {options.exclude_newer}: not an RFC 3339 time",
                hint="e.g. 2025-01-01T00:00:00Z",
            ) from None
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


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _inputs(
    solution: Solution,
    requests: Sequence[PlatformRequest],
    options: LockOptions,
    header: LockHeader | None,
    *,
    profile_hash: str,
    matrix_hash: str,
) -> LockInputs:
    recorded = header.inputs if header is not None else None
    full_upgrade = options.upgrade and not options.upgrade_packages
    if options.exclude_newer:
        exclude_newer = options.exclude_newer
    elif recorded is not None and not full_upgrade:
        exclude_newer = recorded.exclude_newer
    else:
        exclude_newer = _now()
    per_package = dict(recorded.exclude_newer_packages) if recorded is not None and not full_upgrade else {}
    if options.upgrade:
        per_package.update({name: _now() for name in options.upgrade_packages})
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


def _channels(requests: Sequence[PlatformRequest], options: LockOptions) -> tuple[str, ...]:
    if options.channels:
        return options.channels
    seen: dict[str, None] = {}
    for request in requests:
        seen.update(dict.fromkeys(request.conda_channels))
    return tuple(seen)


def _resolve_all(
    requests: Sequence[PlatformRequest], options: LockOptions, inputs: LockInputs
) -> dict[str, tuple[LockEntry, ...]]:
    from concurrent.futures import ThreadPoolExecutor

    from envctl.services.lock.resolve import resolve_platform

    # uv and rattler spend their time in native code and subprocesses: platforms run side by side.
    with ThreadPoolExecutor(max_workers=max(1, min(4, len(requests)))) as pool:
        futures = {r.platform: pool.submit(resolve_platform, r, options, inputs) for r in requests}
        return {platform: future.result() for platform, future in futures.items()}


def _framework_names(solution: Solution) -> tuple[str, ...]:
    return tuple(f.name for f in solution.frameworks)


def summarize(platform: str, entries: Sequence[LockEntry], frameworks: Sequence[str]) -> PlatformSummary:
    """Counts, CUDA/cuDNN/NCCL found and framework builds of one platform's entries."""
    from envctl.core.lockcheck import cuda_of

    cudas = sorted({c for e in entries if (c := cuda_of(e))})
    cudnn = next((e.version for e in entries if e.name.startswith("nvidia-cudnn-")), None)
    nccl = next((e.version for e in entries if e.name.startswith("nvidia-nccl-")), None)
    wanted = set(frameworks)
    frameworks = tuple(f"{e.name} {e.version}" for e in entries if e.name in wanted)
    return PlatformSummary(
        platform=platform,
        pip=sum(1 for e in entries if e.manager == "pip"),
        conda=sum(1 for e in entries if e.manager == "conda"),
        cuda=", ".join(cudas) or None,
        cudnn=cudnn,
        nccl=nccl,
        frameworks=frameworks,
    )


def solution_summary(solution: Solution) -> dict[str, Any]:
    """The part of the solution worth keeping in the lock's metadata."""
    return {
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
