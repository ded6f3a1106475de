"""Whether the nodes' NVIDIA driver runs a CUDA toolkit: natively, by minor-version
compatibility, or with the forward-compatibility package (cuda-compat), and why not otherwise."""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import Version

from envctl.core.constraints import Problem
from envctl.core.matrix import Build, CudaToolkit, Matrix
from envctl.core.reasons import DRIVER, PTX_JIT, Reason


@dataclass(frozen=True)
class DriverFit:
    """How the driver runs the chosen toolkit, and the least driver that way needs."""

    mode: str  # native | minor-version compatibility | forward compatibility
    min_driver: Version


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
    native = what_driver_runs(matrix, driver)
    if driver >= major.min_driver:
        jit = [(g, b) for g in problem.active_gpus() for b in builds if b.needs_jit(g.cc)]
        if not jit:
            return DriverFit("minor-version compatibility", major.min_driver)
        gpu, b = jit[0]
        only = f"{gpu.name} (CC {gpu.cc}) runs {b.framework} only by {b.runs_on(gpu.cc)}, which minor-version compatibility does not allow"
        return Reason(
            f"CUDA {cuda.version}",
            f"{only}: needs driver >= {cuda.min_driver}",
            blame | {f"targets.gpus.{gpu.name}"},
            fact=only,
            kind=PTX_JIT,
        )
    gpus = problem.active_gpus()
    # Only called on GPU platforms. A relaxed GPU ("any GPU will do") must not rule the package
    # out, or relaxing a requirement could make a profile fail (and explanations would miss it).
    if major.forward_compat == "datacenter" and all(g.datacenter for g in gpus):
        if problem.forward_compat():
            return DriverFit("forward compatibility", driver)
        blame = blame | {"targets.forward_compat"}
    needs = f"needs driver >= {cuda.min_driver} (CUDA {cuda.version})"
    if major.min_driver < cuda.min_driver:
        needs += f", or >= {major.min_driver} by CUDA {major.major}.x minor-version compatibility"
    return Reason(f"CUDA {cuda.version}", f"{needs}; {native}", blame, fact=native, kind=DRIVER)


def what_driver_runs(matrix: Matrix, driver: Version) -> str:
    """Which toolkits ``driver`` runs natively and which major by minor-version compatibility."""
    newest = max((t.version for t in matrix.toolkits if t.min_driver <= driver), default=None)
    compat = max((m.major for m in matrix.majors if m.min_driver <= driver), default=None)
    if newest is None and compat is None:
        return f"driver {driver} is older than every CUDA toolkit"
    text = f"driver {driver} runs CUDA <= {newest} natively" if newest else f"driver {driver}"
    if compat is not None and (newest is None or compat == newest.major):
        text += f" and {compat}.x by minor-version compatibility"
    return text
