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
from envctl.core.driver_fit import DriverFit, driver_fit, gpu_driver_reasons, native_floor
from envctl.core.matrix import Build, CudaToolkit, Framework, Matrix
from envctl.core.reasons import Reason, most_relevant, requirement_key
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
    reasons: list[Reason] = gpu_driver_reasons(problem, matrix)
    if reasons:  # the driver cannot drive a GPU at all: no toolkit or build changes that
        return NotFound(tuple(reasons))
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

    for count, combo in enumerate(itertools.product(*per_framework)):
        if count >= MAX_COMBINATIONS:
            reasons.append(Reason("search", f"gave up after {MAX_COMBINATIONS} combinations", frozenset()))
            break
        versions = tuple(zip(frameworks, combo, strict=True))
        found = _try_combination(problem, matrix, versions, blas, reasons)
        if found is not None:
            return found
    return NotFound(tuple(reasons))


def _try_combination(
    problem: Problem,
    matrix: Matrix,
    versions: tuple[tuple[Framework, Version], ...],
    blas: str,
    reasons: list[Reason],
) -> Found | None:
    gpu_platforms = [p for p in problem.platforms() if problem.gpu_platform(p)]
    cudas: list[CudaToolkit | None] = [None]
    if gpu_platforms and versions:
        # the CUDA builds of each framework on each GPU platform, found once for every toolkit
        builds = [
            candidate_builds(fw, v, p, True, problem.extras(fw.name))
            for fw, v in versions
            for p in gpu_platforms
        ]
        cudas = [
            t
            for t in reversed(matrix.toolkits)
            if all(any(b.cuda is not None and t.version in b.cuda for b in group) for group in builds)
        ]
        if not cudas:
            reasons.append(_no_common_cuda(problem, versions, gpu_platforms))
            return None
        # Among toolkits every build accepts, one the driver runs natively beats a newer one that
        # needs minor-version compatibility (which rules out PTX JIT) or the cuda-compat package,
        # within one CUDA major only: 12.4 by minor-version compatibility still beats 11.8 natively.
        # "Natively" is judged on the update release the builds carry (12.8.90 needs 570.124.06).
        driver = problem.driver()
        cudas.sort(
            key=lambda t: (
                -t.version.major if t else 0,
                t is not None and driver is not None and driver < _least_native_floor(matrix, builds, t),
            )
        )
    for cuda in cudas:
        found = _try_cuda(problem, matrix, versions, cuda, blas, reasons)
        if found is not None:
            return found
    return None


def _least_native_floor(matrix: Matrix, builds: list[list[Build]], cuda: CudaToolkit) -> Version:
    """The lowest driver that runs some build of every group (a framework on a platform) on
    ``cuda`` natively."""
    floor = cuda.min_driver
    for group in builds:
        floors = [
            native_floor(matrix, cuda, [b])[0] for b in group if b.cuda is not None and cuda.version in b.cuda
        ]
        if floors:
            floor = max(floor, min(floors))
    return floor


def _native_first(
    problem: Problem, matrix: Matrix, builds: list[Build], cuda: CudaToolkit | None
) -> list[Build]:
    """Builds the driver runs natively first (stable: PyPI before other indexes otherwise)."""
    driver = problem.driver()
    if cuda is None or driver is None:
        return builds
    return sorted(builds, key=lambda b: b.cuda is not None and driver < native_floor(matrix, cuda, [b])[0])


def _no_common_cuda(
    problem: Problem, versions: tuple[tuple[Framework, Version], ...], platforms: list[str]
) -> Reason:
    parts = []
    for fw, v in versions:
        builds = [b for p in platforms for b in candidate_builds(fw, v, p, True, problem.extras(fw.name))]
        specs = sorted({str(b.cuda) for b in builds if b.cuda is not None})
        parts.append(f"{fw.name} {v} has CUDA {' | '.join(specs) or 'none'}")
    subject = " + ".join(f"{fw.name} {v}" for fw, v in versions)
    return Reason(subject, "no CUDA toolkit fits all: " + "; ".join(parts), frozenset())


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
                    for b in _native_first(
                        problem, matrix, candidate_builds(fw, v, platform, gpu, problem.extras(fw.name)), cuda
                    )
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
    # Builds that take NCCL and cuBLAS from pip must agree on their pins: one nvidia-nccl-cuNN
    # wheel serves them all (torch 2.3.1+cu118 pins 2.20.5, TensorFlow 2.14 pins 2.16.5).
    nccl = pick_pin([b for b in gpu_builds if b.nccl is not None], "nccl", problem, reasons)
    if nccl is False:
        return None
    cublas = pick_pin([b for b in gpu_builds if b.cublas is not None], "cublas", problem, reasons)
    if cublas is False:
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
