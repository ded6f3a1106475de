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
from collections.abc import Iterator
from dataclasses import dataclass

from packaging.version import Version

from envctl.core.build_fit import build_fits, candidate_builds, single_viability
from envctl.core.constraints import Problem
from envctl.core.driver_fit import DriverFit, driver_fit, gpu_driver_reasons, native_floor
from envctl.core.matrix import Build, CudaToolkit, Framework, Matrix
from envctl.core.reasons import NO_COMMON_CUDA, Reason, most_relevant, requirement_key
from envctl.core.shared_libs import pick_blas, pick_cudnn, pick_pin

MAX_COMBINATIONS = 20_000  # more framework-version combinations than any real profile yields
GAVE_UP = "search"  # the subject of the reason a search that reached its limit leaves


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

    @property
    def gave_up(self) -> bool:
        """True when the search stopped at its limit: no stack was found, none was ruled out."""
        return any(r.subject == GAVE_UP for r in self.reasons)


def search(
    problem: Problem,
    matrix: Matrix,
    limit: int = MAX_COMBINATIONS,
    memo: SearchMemo | None = None,
) -> Found | NotFound:
    """Find the most preferred consistent stack for the requirements still active in ``problem``,
    trying at most ``limit`` combinations of releases (explanations, which search many relaxed
    problems, try fewer; a search that gives up says so in its reasons: ``NotFound.gave_up``).
    ``memo`` carries what single releases were found to offer from one search of a profile to
    the next (explanations search one profile under many subsets of its requirements)."""
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
            why = _viability(problem, matrix, fw, v, memo)
            if why:
                reasons.extend(why)
            else:
                viable.append(v)
        if not viable:
            return NotFound(tuple(reasons))
        per_framework.append(viable)

    releases = _Releases(problem, matrix, memo or SearchMemo())
    for count, (combo, shares_cuda) in enumerate(_combinations(frameworks, per_framework, releases)):
        if count >= limit:
            reasons.append(Reason(GAVE_UP, f"gave up after {limit} combinations", frozenset()))
            break
        versions = tuple(zip(frameworks, combo, strict=True))
        if not shares_cuda:
            reasons.append(_no_common_cuda(versions, releases))
            continue
        found = _try_combination(problem, matrix, versions, blas, reasons, releases)
        if found is not None:
            return found
    return NotFound(tuple(reasons))


class SearchMemo:
    """What the searches of one profile under different subsets of its requirements can share:
    whether a release fits on its own, and which toolkits it accepts. Keys name everything the
    answer reads, so a search never sees an answer made under other requirements (or another
    driver); other fields of the profile must stay the same."""

    def __init__(self) -> None:
        self.viability: dict[tuple[str, Version, frozenset[str], Version | None], list[Reason]] = {}
        self.accepted: dict[tuple[str, Version, tuple[str, ...], tuple[str, ...]], frozenset[Version]] = {}
        self.specs: dict[tuple[str, Version, tuple[str, ...], tuple[str, ...]], str] = {}


def _viability(
    problem: Problem, matrix: Matrix, fw: Framework, v: Version, memo: SearchMemo | None
) -> list[Reason]:
    """``single_viability``, remembered. Whether one release fits on its own reads every
    requirement but the frameworks' ranges (its own is applied before) and their extras (its
    own do count) and BLAS; explanations mostly drop ranges, so most of their searches reuse it."""
    if memo is None:
        return single_viability(problem, matrix, fw, v)
    own = next((f"{f.key}.extras" for f in problem.profile.frameworks if f.name == fw.name), "")
    depends = frozenset(
        r for r in problem.active if (not r.startswith("frameworks.") or r == own) and r != "blas.prefer"
    )
    key = (fw.name, v, depends, problem.profile.targets.driver)  # lowest_driver varies the driver
    if key not in memo.viability:
        memo.viability[key] = single_viability(problem, matrix, fw, v)
    return memo.viability[key]


def _combinations(
    frameworks: list[Framework], per_framework: list[list[Version]], releases: _Releases
) -> Iterator[tuple[tuple[Version, ...], bool]]:
    """The combinations of releases in preference order (as ``itertools.product`` yields them),
    except that a run of them whose releases so far share no CUDA toolkit with each other and
    with what the frameworks after them offer at all is skipped whole: it yields its first
    combination only, marked False, as the witness a reason is made of. Three frameworks free
    to range over every release would otherwise try tens of thousands that cannot fit."""
    if not releases.gpu_platforms or not per_framework:
        yield from ((combo, True) for combo in itertools.product(*per_framework))
        return
    offered = [
        frozenset().union(*(releases.accepted(fw, v) for v in vs))
        for fw, vs in zip(frameworks, per_framework, strict=True)
    ]
    later = [
        frozenset.intersection(*offered[i:]) if i < len(offered) else None for i in range(len(offered) + 1)
    ]

    def walk(
        i: int, prefix: tuple[Version, ...], common: frozenset[Version] | None
    ) -> Iterator[tuple[tuple[Version, ...], bool]]:
        rest = later[i]
        if common is not None and (not common or (rest is not None and not common & rest)):
            yield prefix + tuple(vs[0] for vs in per_framework[i:]), False
            return
        if i == len(per_framework):
            yield prefix, True
            return
        for v in per_framework[i]:
            accepted = releases.accepted(frameworks[i], v)
            yield from walk(i + 1, (*prefix, v), accepted if common is None else common & accepted)

    yield from walk(0, (), None)


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
        # "Natively" is judged on the update release the builds carry (12.8.90 needs 570.124.06).
        driver = problem.driver()
        # the CUDA builds of each framework on each GPU platform, found once for every toolkit
        builds = (
            [
                candidate_builds(fw, v, p, True, problem.extras(fw.name))
                for fw, v in versions
                for p in releases.gpu_platforms
            ]
            if driver is not None
            else []
        )
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


class _Releases:
    """What each release offers on the GPU platforms, worked out once per search (or per profile,
    through a ``SearchMemo``): the combination loop asks it for every pair of releases, and
    re-deriving it dominated the time of infeasible searches (and so of explanations)."""

    def __init__(self, problem: Problem, matrix: Matrix, memo: SearchMemo) -> None:
        self.problem = problem
        self.matrix = matrix
        self.memo = memo
        self.gpu_platforms = [p for p in problem.platforms() if problem.gpu_platform(p)]

    def _key(self, fw: Framework, v: Version) -> tuple[str, Version, tuple[str, ...], tuple[str, ...]]:
        return (fw.name, v, tuple(self.gpu_platforms), self.problem.extras(fw.name))

    def _builds(self, fw: Framework, v: Version) -> list[list[Build]]:
        extras = self.problem.extras(fw.name)
        return [candidate_builds(fw, v, p, True, extras) for p in self.gpu_platforms]

    def accepted(self, fw: Framework, v: Version) -> frozenset[Version]:
        """The toolkits some build of ``fw`` ``v`` accepts on every GPU platform."""
        key = self._key(fw, v)
        if key not in self.memo.accepted:
            builds = self._builds(fw, v)
            self.memo.accepted[key] = frozenset(
                t.version
                for t in self.matrix.toolkits
                if all(any(b.cuda is not None and t.version in b.cuda for b in bs) for bs in builds)
            )
        return self.memo.accepted[key]

    def cuda_specs(self, fw: Framework, v: Version) -> str:
        """``==12.4 | ==12.1``: the CUDA ranges of its builds, for reasons."""
        key = self._key(fw, v)
        if key not in self.memo.specs:
            specs = sorted({str(b.cuda) for bs in self._builds(fw, v) for b in bs if b.cuda is not None})
            self.memo.specs[key] = " | ".join(specs) or "none"
        return self.memo.specs[key]


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
