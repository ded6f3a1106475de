"""The compatibility solver: (profile, matrix) -> the newest consistent stack, or why none exists.

Pure: values in, values out. Preference order, as users expect it:
1. newest framework versions, in the profile's order (the first framework matters most);
2. then the newest CUDA toolkit that every framework has a build for and the targets can run;
3. then the PyPI default build over a framework's own index (fewer moving parts, no local labels).

``search`` returns a ``Found`` or a ``NotFound`` listing ``Reason``s; each reason names the
requirement ids that caused it so that ``explain`` can find the smallest conflicting set.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from packaging.version import Version

from envctl.core.build_fit import build_fits, candidate_builds, single_viability
from envctl.core.constraints import Problem
from envctl.core.driver_fit import DriverFit, driver_fit
from envctl.core.matrix import Build, CudaToolkit, Framework, Matrix
from envctl.core.reasons import NO_COMMON_CUDA, Reason, most_relevant, requirement_key
from envctl.core.shared_libs import pick_blas, pick_cudnn, pick_pin

MAX_COMBINATIONS = 20_000  # more framework-version combinations than any real profile yields


@dataclass(frozen=True)
class Found:
    """The most preferred stack: a release and a build per framework and platform, and its libraries."""

    versions: tuple[tuple[Framework, Version], ...]
    builds: dict[str, tuple[Build, ...]]  # platform -> build per framework (same order)
    cuda: CudaToolkit | None
    driver: DriverFit | None
    python: Version
    cudnn: Version | None
    nccl: Version | None
    blas: str
    rejected: tuple[Reason, ...]  # what was passed over on the way (for decisions)


@dataclass(frozen=True)
class NotFound:
    """No stack fits; every candidate passed over, with the requirements it blames."""

    reasons: tuple[Reason, ...]


def search(problem: Problem, matrix: Matrix) -> Found | NotFound:
    """Find the most preferred consistent stack for the requirements still active in ``problem``."""
    reasons: list[Reason] = []
    blas = pick_blas(problem, matrix, reasons)
    if blas is None:
        return NotFound(tuple(reasons))
    per_framework: list[list[Version]] = []
    frameworks: list[Framework] = []
    for request in problem.profile.frameworks:
        fw = matrix.framework(request.name)
        assert fw is not None  # make_problem checked it
        frameworks.append(fw)
        viable = []
        for v in fw.versions():
            if v not in problem.spec(request):
                reasons.append(
                    Reason(
                        f"{fw.name} {v}",
                        f"excluded by {request.key} = '{request.spec}'",
                        frozenset({request.key}),
                    )
                )
                continue
            why = single_viability(problem, matrix, fw, v)
            if why:
                reasons.extend(why)
            else:
                viable.append(v)
        if not viable:
            return NotFound(tuple(reasons))
        per_framework.append(viable)

    releases = _Releases(problem, matrix)
    for count, combo in enumerate(itertools.product(*per_framework)):
        if count >= MAX_COMBINATIONS:
            reasons.append(Reason("search", f"gave up after {MAX_COMBINATIONS} combinations", frozenset()))
            break
        versions = tuple(zip(frameworks, combo, strict=True))
        found = _try_combination(problem, matrix, versions, blas, reasons, releases)
        if found is not None:
            return found
    return NotFound(tuple(reasons))


def _try_combination(
    problem: Problem,
    matrix: Matrix,
    versions: tuple[tuple[Framework, Version], ...],
    blas: str,
    reasons: list[Reason],
    releases: _Releases,
) -> Found | None:
    cudas: list[CudaToolkit | None] = [None]
    if releases.gpu_platforms and versions:
        common = frozenset.intersection(*(releases.accepted(fw, v) for fw, v in versions))
        if not common:
            reasons.append(_no_common_cuda(versions, releases))
            return None
        cudas = [t for t in reversed(matrix.toolkits) if t.version in common]
        # Among toolkits every build accepts, one the driver runs natively beats a newer one that
        # needs minor-version compatibility (which rules out PTX JIT) or the cuda-compat package,
        # within one CUDA major only: 12.4 by minor-version compatibility still beats 11.8 natively.
        driver = problem.driver()
        cudas.sort(
            key=lambda t: (
                -t.version.major if t else 0,
                t is not None and driver is not None and driver < t.min_driver,
            )
        )
    for cuda in cudas:
        found = _try_cuda(problem, matrix, versions, cuda, blas, reasons)
        if found is not None:
            return found
    return None


class _Releases:
    """What each release offers on the GPU platforms, worked out once per search: the combination
    loop asks it for every pair of releases, and re-deriving it dominated the time of infeasible
    searches (and so of explanations, which run many)."""

    def __init__(self, problem: Problem, matrix: Matrix) -> None:
        self.problem = problem
        self.matrix = matrix
        self.gpu_platforms = [p for p in problem.platforms() if problem.gpu_platform(p)]
        self._accepted: dict[tuple[str, Version], frozenset[Version]] = {}
        self._specs: dict[tuple[str, Version], str] = {}

    def _builds(self, fw: Framework, v: Version) -> list[list[Build]]:
        extras = self.problem.extras(fw.name)
        return [candidate_builds(fw, v, p, True, extras) for p in self.gpu_platforms]

    def accepted(self, fw: Framework, v: Version) -> frozenset[Version]:
        """The toolkits some build of ``fw`` ``v`` accepts on every GPU platform."""
        key = (fw.name, v)
        if key not in self._accepted:
            builds = self._builds(fw, v)
            self._accepted[key] = frozenset(
                t.version
                for t in self.matrix.toolkits
                if all(any(b.cuda is not None and t.version in b.cuda for b in bs) for bs in builds)
            )
        return self._accepted[key]

    def cuda_specs(self, fw: Framework, v: Version) -> str:
        """``==12.4 | ==12.1``: the CUDA ranges of its builds, for reasons."""
        key = (fw.name, v)
        if key not in self._specs:
            specs = sorted({str(b.cuda) for bs in self._builds(fw, v) for b in bs if b.cuda is not None})
            self._specs[key] = " | ".join(specs) or "none"
        return self._specs[key]


def _no_common_cuda(versions: tuple[tuple[Framework, Version], ...], releases: _Releases) -> Reason:
    parts = [f"{fw.name} {v} has CUDA {releases.cuda_specs(fw, v)}" for fw, v in versions]
    subject = " + ".join(f"{fw.name} {v}" for fw, v in versions)
    return Reason(subject, "no CUDA toolkit fits all: " + "; ".join(parts), frozenset(), kind=NO_COMMON_CUDA)


def _try_cuda(
    problem: Problem,
    matrix: Matrix,
    versions: tuple[tuple[Framework, Version], ...],
    cuda: CudaToolkit | None,
    blas: str,
    reasons: list[Reason],
) -> Found | None:
    chosen: dict[str, tuple[Build, ...]] = {}
    for platform in problem.platforms():
        gpu = problem.gpu_platform(platform)
        picks = []
        for fw, v in versions:
            why: list[Reason] = []
            pick = next(
                (
                    b
                    for b in candidate_builds(fw, v, platform, gpu, problem.extras(fw.name))
                    if (not gpu or (b.cuda is not None and cuda is not None and cuda.version in b.cuda))
                    and build_fits(problem, matrix, b, v, platform, cuda if gpu else None, why)
                ),
                None,
            )
            if pick is None:
                reasons.extend(
                    most_relevant(why)
                    or [
                        Reason(
                            f"{fw.name} {v}",
                            f"no build for {platform} with CUDA {cuda.version if cuda else '-'}",
                            frozenset(),
                        )
                    ]
                )
                return None
            picks.append(pick)
        chosen[platform] = tuple(picks)
    all_builds = [b for picks in chosen.values() for b in picks]
    gpu_builds = [b for p, picks in chosen.items() if problem.gpu_platform(p) for b in picks]

    fit: DriverFit | Reason | None = None
    if cuda is not None:
        fit = driver_fit(problem, matrix, cuda, gpu_builds)
        if isinstance(fit, Reason):
            reasons.append(fit)
            return None
    assert not isinstance(fit, Reason)

    python = next(
        (
            pv
            for pv in reversed(matrix.python_versions)
            if pv in problem.python() and all(pv in b.python for b in all_builds)
        ),
        None,
    )
    if python is None:
        ranges = "; ".join(f"{b.framework} {b.variant} supports {b.python}" for b in all_builds)
        blame = frozenset(
            {"environment.python"} | {requirement_key(problem, b.framework) for b in all_builds}
        )
        reasons.append(
            Reason(
                "python",
                f"no Python version fits all: {ranges}; profile asks {problem.python() or '(any)'}",
                blame,
            )
        )
        return None

    cudnn = None
    if cuda is not None:
        cudnn = pick_cudnn(matrix, cuda, gpu_builds, problem, reasons)
        if cudnn is False:
            return None
    nccl = pick_pin([b for b in gpu_builds if b.nccl is not None], "nccl", problem, reasons)
    if nccl is False:
        return None
    return Found(
        versions=versions,
        builds=chosen,
        cuda=cuda,
        driver=fit,
        python=python,
        cudnn=cudnn if isinstance(cudnn, Version) else None,
        nccl=nccl if isinstance(nccl, Version) else None,
        blas=blas,
        rejected=tuple(reasons),
    )
