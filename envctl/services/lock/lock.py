"""`envctl lock`: solve -> resolve every platform (PyPI + conda side) -> check -> write atomically.

A content hash over the inputs (profile, matrix, solution, exclude-newer, sources) decides reuse:
unchanged inputs reuse the lock without resolving. Before that, a fingerprint of the raw input
bytes lets an untouched profile skip even the solver (``inputs`` holds both). The resolvers come
in through ``core.resolvers``; the lock is read and written only by ``adapters.lockfile``, which
replaces the file atomically, so a failed lock leaves the old one as it was.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from envctl import __version__
from envctl.adapters.lockfile import read_lock, write_lock
from envctl.core.lock import LockData, LockEntry, LockInputs, LockOptions
from envctl.core.progress import NullProgress, Progress
from envctl.core.resolvers import Resolvers
from envctl.core.solution import PlatformRequest, Solution
from envctl.errors import LockCheckError, LockError
from envctl.services.lock.inputs import (
    check_sources,
    fingerprint,
    lock_channels,
    lock_inputs,
    select_platforms,
    solution_summary,
)
from envctl.services.lock.resolve import default_resolvers, resolve_platform

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
    resolvers: Resolvers | None = None,
    progress: Progress | None = None,
) -> LockResult:
    """Solve ``profile`` and lock the solution (see ``lock_solution``).

    When the profile's bytes, the matrix's bytes and the options are those recorded in the lock
    (its fingerprint), the solution cannot have changed: the lock is reused without solving.
    """
    from envctl.adapters import ledger

    with ledger.recording("lock", str(profile)) as entry:
        raw = fingerprint(profile, options, matrix_dir, gpus, driver, arch)
        result = _unchanged(options, raw) if raw and not options.upgrade else None
        if result is None:
            from envctl.services.solve.solve import solve_profile_file

            report = progress or NullProgress()
            report.phase("solve")
            outcome = solve_profile_file(profile, matrix_dir=matrix_dir, gpus=gpus, driver=driver, arch=arch)
            result = lock_solution(
                outcome.solution,
                options,
                profile_hash=outcome.profile_hash,
                matrix_hash=outcome.matrix_hash,
                fingerprint=raw,
                resolvers=resolvers,
                progress=report,
            )
        entry.update(
            subject=result.content_hash, outcome=result.status, file=str(result.path), profile=str(profile)
        )
        return result


def _unchanged(options: LockOptions, raw: str) -> LockResult | None:
    """The reuse (or --check) result when the lock's fingerprint matches, else None."""
    try:
        lock = read_lock(options.output, validate=False)
    except LockError:
        return None  # missing or bad: the full path reports it
    if lock.inputs is None or lock.fingerprint != raw:
        return None
    summaries = tuple(
        summarize(platform, lock.for_platform(platform), lock.framework_names)
        for platform in lock.inputs.platforms
    )
    status: Status = "fresh" if options.check else "reused"
    return LockResult(options.output, status, lock.content_hash, lock.exclude_newer, summaries)


def lock_solution(
    solution: Solution,
    options: LockOptions,
    *,
    profile_hash: str,
    matrix_hash: str,
    fingerprint: str = "",
    resolvers: Resolvers | None = None,
    progress: Progress | None = None,
) -> LockResult:
    """Lock ``solution`` into ``options.output``, reusing it when the inputs are unchanged.

    ``resolvers`` default to uv and rattler. ``--check`` reports fresh or stale and writes
    nothing; a lock the resolvers' closure disagrees with is a LockCheckError, nothing written.
    """
    requests = select_platforms(solution, options.platforms)
    check_sources(options, requests)
    existing, stale_reason = _existing(options)
    recorded = existing.inputs if existing is not None else None
    inputs = lock_inputs(
        solution, requests, options, recorded, profile_hash=profile_hash, matrix_hash=matrix_hash
    )
    content_hash = inputs.content_hash()
    if existing is not None:
        stale_reason = "inputs changed" if existing.content_hash != content_hash else ""
    if options.check:
        status: Status = "stale" if stale_reason else "fresh"
        return LockResult(options.output, status, content_hash, inputs.exclude_newer, reason=stale_reason)
    names = tuple(f.name for f in solution.frameworks)
    if existing is not None and not stale_reason and not options.upgrade:
        summaries = tuple(summarize(r.platform, existing.for_platform(r.platform), names) for r in requests)
        return LockResult(options.output, "reused", content_hash, inputs.exclude_newer, platforms=summaries)

    # conda_lock's import (~0.5-2 s: its package pulls in its whole CLI) overlaps the resolve,
    # which waits on uv subprocesses and rattler's native solver.
    report = progress or NullProgress()
    resolvers = resolvers or default_resolvers(report)
    preload = threading.Thread(target=_preload_lockfile_models, name="envctl-preload", daemon=True)
    preload.start()
    tools = [
        t
        for t, used in (
            ("uv", any(r.requirements for r in requests)),
            ("rattler", any(r.conda_specs for r in requests)),
        )
        if used
    ]
    report.phase(
        "resolve "
        + ", ".join(r.platform for r in requests)
        + f" ({', '.join(tools) or 'nothing to resolve'})"
    )
    entries = _resolve_all(requests, options, inputs, resolvers, report)
    report.phase("check the closure against the solution")
    _check_closure(requests, entries, offline=options.offline)
    data = LockData(
        platforms=inputs.platforms,
        entries=tuple(entry for r in requests for entry in entries[r.platform]),
        content_hash=content_hash,
        channels=lock_channels(requests, options),
        inputs=inputs,
        envctl_version=__version__,
        solution=solution_summary(solution),
        fingerprint=fingerprint,
    )
    preload.join()
    report.phase(f"write {options.output}")
    write_lock(options.output, data)
    return LockResult(
        options.output,
        "written",
        content_hash,
        inputs.exclude_newer,
        platforms=tuple(summarize(r.platform, entries[r.platform], names) for r in requests),
        reason=stale_reason,
        warnings=solution.warnings,
    )


def _existing(options: LockOptions) -> tuple[LockData | None, str]:
    """The lock already at the output (read fast: YAML only), or None with why it is stale.

    Outside --check, a lock that cannot be read, or that envctl did not write, is never replaced.
    """
    if not options.output.exists():
        return None, "no lockfile yet"
    try:
        existing = read_lock(options.output, validate=False)
    except LockError as exc:
        if not options.check:
            raise LockError(exc.message, hint=f"remove {options.output} to lock from scratch") from exc
        return None, exc.message
    if existing.inputs is None:
        reason = f"{options.output} was not written by envctl lock (no envctl metadata)"
        if not options.check:
            raise LockError(reason, hint=f"remove {options.output} or lock into another file with --output")
        return None, reason
    return existing, ""


def _preload_lockfile_models() -> None:
    import contextlib

    from envctl.adapters.lockfile import conda_lock_lockfile

    # Only a warm-up: write_lock imports again and reports any real ImportError.
    with contextlib.suppress(ImportError):
        conda_lock_lockfile()


def _resolve_all(
    requests: Sequence[PlatformRequest],
    options: LockOptions,
    inputs: LockInputs,
    resolvers: Resolvers,
    progress: Progress,
) -> dict[str, tuple[LockEntry, ...]]:
    from concurrent.futures import ThreadPoolExecutor

    def one(request: PlatformRequest) -> tuple[LockEntry, ...]:
        progress.item_started(request.platform)
        try:
            entries = resolve_platform(request, options, inputs, resolvers, progress)
        except BaseException:
            progress.item_finished(request.platform, "failed")
            raise
        pip = sum(1 for e in entries if e.manager == "pip")
        progress.item_finished(request.platform, f"{pip} pip + {len(entries) - pip} conda files")
        return entries

    # uv and rattler spend their time in native code and subprocesses: platforms run side by side.
    with ThreadPoolExecutor(max_workers=max(1, min(4, len(requests)))) as pool:
        futures = {r.platform: pool.submit(one, r) for r in requests}
        return {platform: future.result() for platform, future in futures.items()}


def _check_closure(
    requests: Sequence[PlatformRequest], entries: dict[str, tuple[LockEntry, ...]], *, offline: bool
) -> None:
    from envctl.core.lockcheck import check_platform

    problems = [
        f"{r.platform}: {p}"
        for r in requests
        for p in check_platform(entries[r.platform], r, offline=offline)
    ]
    if problems:
        raise LockCheckError(
            "lock check failed: " + "; ".join(problems),
            hint="the resolved closure disagrees with the solution; fix the profile's pins/indexes",
        )


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
