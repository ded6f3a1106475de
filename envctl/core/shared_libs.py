"""The libraries the frameworks of one stack must agree on: cuDNN, NCCL and BLAS.

cuDNN is picked from the matrix's release list; NCCL only has the builds' own pins, which must
agree; BLAS follows the profile's preference, the platforms MKL has wheels for and the CPU vendor.
"""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envctl.core.constraints import Problem
from envctl.core.matrix import Build, CudaToolkit, Matrix
from envctl.core.reasons import LIBRARY, Reason, pins_fact, requirement_key


def pick_cudnn(
    matrix: Matrix, cuda: CudaToolkit, builds: list[Build], problem: Problem, reasons: list[Reason]
) -> Version | bool | None:
    """The newest cuDNN release every framework accepts, that supports ``cuda`` and that has
    kernels for every GPU of the profile."""
    specs = [b for b in builds if b.cudnn is not None]
    if not specs:
        return None
    gpus = problem.active_gpus()
    shared = [
        (version, series)
        for version, series in reversed(matrix.cudnn_versions())
        if series.supports_cuda(cuda.version)
        and all(version in b.cudnn for b in specs if b.cudnn is not None)
    ]
    for version, series in shared:
        if all(series.supports_gpu(g.cc) for g in gpus):
            return version
    wants = "; ".join(f"{b.framework} {b.variant} needs cuDNN {b.cudnn}" for b in specs)
    blame = frozenset(requirement_key(problem, b.framework) for b in specs)
    text = f"no cuDNN release fits: {wants}"
    fact, kind = pins_fact("cuDNN", [(b.framework, b.cudnn) for b in specs if b.cudnn is not None]), LIBRARY
    if shared:
        missing = [g for g in gpus if not any(s.supports_gpu(g.cc) for _, s in shared)]
        text = (
            f"the cuDNN releases they share ({', '.join(str(v) for v, _ in shared[:3])}) have no kernels for "
            + ", ".join(f"{g.name} (CC {g.cc})" for g in missing)
        )
        blame |= frozenset(f"targets.gpus.{g.name}" for g in missing)
        fact, kind = text, ""  # a GPU fact, not a clash of pins
    reasons.append(Reason(f"cuDNN for CUDA {cuda.version}", text, blame, fact=fact, kind=kind))
    return False


def pick_pin(
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
            Reason(
                what,
                f"pins disagree: {wants}",
                frozenset(requirement_key(problem, b.framework) for b, _ in specs),
                fact=pins_fact(what.upper(), [(b.framework, spec) for b, spec in specs]),
                kind=LIBRARY,
            )
        )
        return False
    return None


def pick_blas(problem: Problem, matrix: Matrix, reasons: list[Reason]) -> str | None:
    """``mkl`` or ``openblas`` as the profile prefers and the targets allow; None if neither fits."""
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
