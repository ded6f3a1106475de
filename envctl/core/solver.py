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

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envctl.core.constraints import Problem
from envctl.core.matrix import Build, CudaToolkit, Framework, Gpu, Matrix, major_minor

MAX_COMBINATIONS = 20_000  # more framework-version combinations than any real profile yields


@dataclass(frozen=True)
class Reason:
    """Why a candidate was rejected, and which requirements are to blame."""

    subject: str  # "torch 2.11.0", "CUDA 12.6", "python"
    text: str
    blame: frozenset[str]


@dataclass(frozen=True)
class DriverFit:
    mode: str  # native | minor-version compatibility | forward compatibility
    min_driver: Version


@dataclass(frozen=True)
class Found:
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
    reasons: tuple[Reason, ...]


def search(problem: Problem, matrix: Matrix) -> Found | NotFound:
    """Find the most preferred consistent stack for the requirements still active in ``problem``."""
    reasons: list[Reason] = []
    blas = _blas(problem, matrix, reasons)
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
            why = _single_viability(problem, matrix, fw, v)
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


# --- single framework -----------------------------------------------------------------------


def _single_viability(problem: Problem, matrix: Matrix, fw: Framework, v: Version) -> list[Reason]:
    """Reasons why ``fw`` at ``v`` cannot work on some platform on its own; empty if it can."""
    for platform in problem.platforms():
        why: list[Reason] = []
        ok = any(
            _build_fits(problem, matrix, b, v, platform, cuda, why)
            for b in _builds(fw, v, platform, problem.gpu_platform(platform), problem.extras(fw.name))
            for cuda in (_cuda_candidates(matrix, b) if problem.gpu_platform(platform) else [None])
        )
        if not ok:
            if not why:
                why.append(
                    Reason(
                        f"{fw.name} {v}",
                        f"has no build for {platform}"
                        + (" with CUDA" if problem.gpu_platform(platform) else ""),
                        _platform_blame(problem, platform),
                    )
                )
            return _most_relevant(why)
    return []


def _builds(fw: Framework, v: Version, platform: str, gpu: bool, extras: tuple[str, ...] = ()) -> list[Build]:
    """Candidate builds in preference order: CUDA builds on GPU platforms, CPU builds elsewhere,
    PyPI before other indexes.
    Extras the profile names (``jax[cuda13]``) select among CUDA builds."""
    builds = [b for b in fw.builds if v in b.versions and platform in b.platforms]
    if gpu:
        builds = [b for b in builds if b.is_cuda and set(extras) <= set(b.extras)]
    else:
        # A CPU-only node gets a CPU build: a CUDA build would drag gigabytes of nvidia-* wheels
        # onto every node and make the lock's CPU-only check fail.
        builds = [b for b in builds if not b.is_cuda]
    return sorted(builds, key=lambda b: b.index.name != "pypi")


def _cuda_candidates(matrix: Matrix, build: Build) -> list[CudaToolkit]:
    assert build.cuda is not None
    return [t for t in reversed(matrix.toolkits) if t.version in build.cuda]


def _build_fits(
    problem: Problem,
    matrix: Matrix,
    b: Build,
    v: Version,
    platform: str,
    cuda: CudaToolkit | None,
    why: list[Reason],
) -> bool:
    """Whether build ``b`` of version ``v`` fits every active requirement on ``platform``."""
    subject = f"{b.framework} {v} ({b.variant})"
    python = problem.python()
    if not any(pv in python and pv in b.python for pv in matrix.python_versions):
        why.append(
            Reason(
                subject,
                f"supports Python {b.python}, the profile asks {python}",
                frozenset({"environment.python"}),
            )
        )
        return False
    glibc = problem.glibc()
    if b.glibc is not None and glibc is not None and b.glibc > glibc:
        why.append(
            Reason(subject, f"needs glibc >= {b.glibc}; the nodes have {glibc}", frozenset({"targets.glibc"}))
        )
        return False
    if cuda is None:
        return True
    for gpu in problem.active_gpus():
        gpu_id = f"targets.gpus.{gpu.name}"
        info = matrix.cc_info(gpu.cc)
        if info is not None and info.last_cuda is not None and cuda.version > info.last_cuda:
            why.append(
                Reason(
                    subject,
                    f"CUDA {cuda.version} no longer targets {gpu.name} (CC {gpu.cc}; last CUDA {info.last_cuda})",
                    frozenset({gpu_id}) | _platform_blame(problem, platform),
                )
            )
            return False
        if b.runs_on(gpu.cc) is None:
            archs = " ".join(f"sm_{a.major}{a.minor}" for a in b.archs) or f"CC >= {b.min_cc}"
            ptx = f", PTX {' '.join(str(p) for p in b.ptx)}" if b.ptx else ", no PTX"
            why.append(
                Reason(
                    subject,
                    f"has no kernels for {gpu.name} (CC {gpu.cc}): built for {archs}{ptx}",
                    frozenset({gpu_id}) | _platform_blame(problem, platform),
                )
            )
            return False
    fit = driver_fit(problem, matrix, cuda, [b])
    if isinstance(fit, Reason):
        why.append(Reason(subject, fit.text, fit.blame))
        return False
    return True


def driver_fit(
    problem: Problem, matrix: Matrix, cuda: CudaToolkit, builds: list[Build]
) -> DriverFit | Reason:
    """How the nodes' driver runs CUDA ``cuda``: natively, by minor-version compatibility (no PTX
    JIT: the driver's JIT is older than the PTX), or with the forward-compatibility package."""
    major = matrix.major(cuda.version.major)
    assert major is not None  # the loader checks every toolkit has a major row
    driver = problem.driver()
    if driver is None or driver >= cuda.min_driver:
        return DriverFit("native", cuda.min_driver)
    blame = frozenset({"targets.driver"})
    native = _what_driver_runs(matrix, driver)
    if driver >= major.min_driver:
        jit = [(g, b) for g in problem.active_gpus() for b in builds if b.needs_jit(g.cc)]
        if not jit:
            return DriverFit("minor-version compatibility", major.min_driver)
        gpu, b = jit[0]
        return Reason(
            f"CUDA {cuda.version}",
            f"{gpu.name} runs {b.framework} only by PTX JIT, which minor-version compatibility does not cover: needs driver >= {cuda.min_driver}",
            blame | {f"targets.gpus.{gpu.name}"},
        )
    gpus = problem.active_gpus()
    if major.forward_compat == "datacenter" and gpus and all(g.datacenter for g in gpus):
        if problem.forward_compat():
            return DriverFit("forward compatibility", driver)
        blame = blame | {"targets.forward_compat"}
    needs = f"needs driver >= {cuda.min_driver} (CUDA {cuda.version})"
    if major.min_driver < cuda.min_driver:
        needs += f", or >= {major.min_driver} by CUDA {major.major}.x minor-version compatibility"
    return Reason(f"CUDA {cuda.version}", f"{needs}; {native}", blame)


def _what_driver_runs(matrix: Matrix, driver: Version) -> str:
    newest = max((t.version for t in matrix.toolkits if t.min_driver <= driver), default=None)
    compat = max((m.major for m in matrix.majors if m.min_driver <= driver), default=None)
    if newest is None and compat is None:
        return f"driver {driver} is older than every CUDA toolkit"
    text = f"driver {driver} runs CUDA <= {newest} natively" if newest else f"driver {driver}"
    if compat is not None and (newest is None or compat == newest.major):
        text += f" and {compat}.x by minor-version compatibility"
    return text


# --- combinations ---------------------------------------------------------------------------


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
        cudas = [
            t
            for t in reversed(matrix.toolkits)
            if all(
                any(
                    b.cuda is not None and t.version in b.cuda
                    for b in _builds(fw, v, p, True, problem.extras(fw.name))
                )
                for fw, v in versions
                for p in gpu_platforms
            )
        ]
        if not cudas:
            reasons.append(_no_common_cuda(problem, versions, gpu_platforms))
            return None
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


def _no_common_cuda(
    problem: Problem, versions: tuple[tuple[Framework, Version], ...], platforms: list[str]
) -> Reason:
    parts = []
    for fw, v in versions:
        builds = [b for p in platforms for b in _builds(fw, v, p, True, problem.extras(fw.name))]
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
                    for b in _builds(fw, v, platform, gpu, problem.extras(fw.name))
                    if (not gpu or (b.cuda is not None and cuda is not None and cuda.version in b.cuda))
                    and _build_fits(problem, matrix, b, v, platform, cuda if gpu else None, why)
                ),
                None,
            )
            if pick is None:
                reasons.extend(
                    _most_relevant(why)
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
        blame = frozenset({"environment.python"} | {_key(problem, b.framework) for b in all_builds})
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
        cudnn = _pick_cudnn(matrix, cuda, gpu_builds, problem, reasons)
        if cudnn is False:
            return None
    nccl = _pick_pin([b for b in gpu_builds if b.nccl is not None], "nccl", problem, reasons)
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


def _pick_cudnn(
    matrix: Matrix, cuda: CudaToolkit, builds: list[Build], problem: Problem, reasons: list[Reason]
) -> Version | bool | None:
    """The newest cuDNN release every framework accepts and that supports ``cuda``."""
    specs = [b for b in builds if b.cudnn is not None]
    if not specs:
        return None
    for version, series in reversed(matrix.cudnn_versions()):
        if series.supports_cuda(cuda.version) and all(
            version in b.cudnn for b in specs if b.cudnn is not None
        ):
            return version
    wants = "; ".join(f"{b.framework} {b.variant} needs cuDNN {b.cudnn}" for b in specs)
    reasons.append(
        Reason(
            f"cuDNN for CUDA {cuda.version}",
            f"no cuDNN release fits: {wants}",
            frozenset(_key(problem, b.framework) for b in specs),
        )
    )
    return False


def _pick_pin(
    builds: list[Build], what: str, problem: Problem, reasons: list[Reason]
) -> Version | bool | None:
    """For libraries the matrix has no release list of: exact pins must agree with every range."""
    specs: list[tuple[Build, SpecifierSet]] = [(b, getattr(b, what)) for b in builds]
    pins = {Version(s.version) for _, spec in specs for s in spec if s.operator == "=="}
    for pin in sorted(pins, reverse=True):
        if all(pin in spec for _, spec in specs):
            return pin
    if pins:
        wants = "; ".join(f"{b.framework} {b.variant} needs {what.upper()} {spec}" for b, spec in specs)
        reasons.append(
            Reason(what, f"pins disagree: {wants}", frozenset(_key(problem, b.framework) for b, _ in specs))
        )
        return False
    return None


def _blas(problem: Problem, matrix: Matrix, reasons: list[Reason]) -> str | None:
    platforms = problem.platforms()
    mkl = matrix.blas_named("mkl")
    wanted = problem.blas()
    if wanted == "openblas" or mkl is None:
        return "openblas"
    missing = [p for p in platforms if p not in mkl.platforms]
    glibc = problem.glibc()
    too_old = mkl.glibc is not None and glibc is not None and glibc < mkl.glibc
    if wanted == "auto":
        vendor = problem.profile.targets.cpu_vendor
        return "mkl" if not missing and not too_old and vendor == "intel" else "openblas"
    if missing:
        reasons.append(
            Reason(
                "BLAS mkl",
                f"MKL has no wheels for {', '.join(missing)}",
                frozenset({"blas.prefer"} | {f"targets.arch.{p}" for p in missing}),
            )
        )
        return None
    if too_old:
        reasons.append(
            Reason(
                "BLAS mkl",
                f"MKL wheels need glibc >= {mkl.glibc}; the nodes have {glibc}",
                frozenset({"blas.prefer", "targets.glibc"}),
            )
        )
        return None
    return "mkl"


def _key(problem: Problem, framework: str) -> str:
    return next((f.key for f in problem.profile.frameworks if f.name == framework), framework)


def _platform_blame(problem: Problem, platform: str) -> frozenset[str]:
    return (
        frozenset({f"targets.arch.{platform}"}) if len(problem.profile.targets.platforms) > 1 else frozenset()
    )


def _most_relevant(why: list[Reason]) -> list[Reason]:
    """Keep the first reason per subject: builds are tried in preference order."""
    seen: dict[str, Reason] = {}
    for r in why:
        seen.setdefault(r.subject, r)
    return list(seen.values())


def newest_gpu_cuda(matrix: Matrix, gpus: tuple[Gpu, ...]) -> Version | None:
    """The newest toolkit that still targets every GPU (for explanations)."""
    lasts = [info.last_cuda for g in gpus if (info := matrix.cc_info(g.cc)) and info.last_cuda]
    return min(lasts) if lasts else None


__all__ = ["DriverFit", "Found", "NotFound", "Reason", "driver_fit", "major_minor", "search"]
