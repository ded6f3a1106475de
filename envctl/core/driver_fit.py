"""Whether the nodes' NVIDIA driver runs a CUDA toolkit: natively, by minor-version
compatibility, or with the forward-compatibility package (cuda-compat), and why not otherwise.

"Natively" is decided on what the chosen wheels carry, not on the toolkit's GA release: torch's
cu128 wheels of 2.8+ carry 12.8 Update 1 (cudart 12.8.90), which needs 570.124.06, not 570.26.
Every GPU also bounds the driver by itself: a Kepler GPU has no driver after R470, a B200 none
before 570.133.20; no CUDA compatibility mode changes that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from packaging.version import Version

from envctl.core.constraints import Problem
from envctl.core.matrix import Build, CudaToolkit, Gpu, Matrix
from envctl.core.reasons import DRIVER, PTX_JIT, Reason


@dataclass(frozen=True)
class DriverFit:
    """How the driver runs the chosen toolkit, and the least driver that way needs."""

    mode: str  # native | minor-version compatibility | forward compatibility
    min_driver: Version
    update: Version | None = None  # the toolkit release whose floor decided "native", if known
    gpu_floor: str | None = None  # "B200 needs >= 570.133.20" when a GPU raises min_driver


def native_floor(
    matrix: Matrix, cuda: CudaToolkit, builds: Iterable[Build]
) -> tuple[Version, Version | None]:
    """The least driver that runs every build's libraries of ``cuda`` natively, and the update
    release behind it (None when only the GA floor is known)."""
    floor, update = cuda.min_driver, None
    for b in builds:
        if b.cuda is None or cuda.version not in b.cuda:
            continue
        need = matrix.native_floor(cuda, b)
        if need > floor:
            floor = need
            update = b.cuda_update or _newest_update(matrix, cuda)
    return floor, update


def _newest_update(matrix: Matrix, cuda: CudaToolkit) -> Version | None:
    newest = matrix.newest_update(cuda.version)
    return newest.version if newest is not None else None


def gpu_driver_reasons(problem: Problem, matrix: Matrix) -> list[Reason]:
    """Why the nodes' driver cannot drive some GPU at all, whatever the toolkit: past the last
    branch of its architecture, or older than the first driver for the product."""
    driver = problem.driver()
    if driver is None or not any(problem.gpu_platform(p) for p in problem.platforms()):
        return []  # CPU-only everywhere: the GPUs drive nothing, so bound no driver
    out = []
    for gpu in problem.active_gpus():
        blame = frozenset({"targets.driver", f"targets.gpus.{gpu.name}"})
        info = matrix.cc_info(gpu.cc)
        if (
            info is not None
            and info.last_driver_branch is not None
            and driver.major > info.last_driver_branch
        ):
            out.append(
                Reason(
                    f"GPU {gpu.name}",
                    f"{info.family} GPUs (CC {gpu.cc}) have no driver after branch R{info.last_driver_branch}; "
                    f"driver {driver} does not drive {gpu.name}",
                    blame,
                )
            )
        if gpu.min_driver is not None and driver < gpu.min_driver:
            out.append(
                Reason(
                    f"GPU {gpu.name}",
                    f"{gpu.name} needs driver >= {gpu.min_driver}; the nodes have {driver}",
                    blame,
                )
            )
    return out


def last_branch(problem: Problem, matrix: Matrix) -> tuple[int, str] | None:
    """The oldest last driver branch among the profile's GPUs, when the nodes' driver is past it:
    (470, "K80") for a Kepler GPU on driver 535."""
    driver = problem.driver()
    capped = []
    for gpu in problem.active_gpus():
        info = matrix.cc_info(gpu.cc)
        if info is not None and info.last_driver_branch is not None:
            capped.append((info.last_driver_branch, gpu.name))
    if not capped or driver is None or driver.major <= min(capped)[0]:
        return None
    return min(capped)


def _gpu_floor(gpus: Iterable[Gpu]) -> tuple[Version | None, str | None]:
    best: Gpu | None = None
    for g in gpus:
        if g.min_driver is not None and (
            best is None or best.min_driver is None or g.min_driver > best.min_driver
        ):
            best = g
    if best is None or best.min_driver is None:
        return None, None
    return best.min_driver, f"{best.name} needs >= {best.min_driver}"


def driver_fit(
    problem: Problem, matrix: Matrix, cuda: CudaToolkit, builds: list[Build]
) -> DriverFit | Reason:
    """How the nodes' driver runs CUDA ``cuda`` for ``builds``: natively, by minor-version
    compatibility (no PTX JIT: the driver's JIT is older than the PTX), or with the
    forward-compatibility package."""
    major = matrix.major(cuda.version.major)
    assert major is not None  # the loader checks every toolkit has a major row
    driver = problem.driver()
    floor, update = native_floor(matrix, cuda, builds)
    gpu_min, gpu_why = _gpu_floor(problem.active_gpus())

    def fit(mode: str, least: Version, upd: Version | None = None) -> DriverFit:
        if gpu_min is not None and gpu_min > least:
            return DriverFit(mode, gpu_min, upd, gpu_why)
        return DriverFit(mode, least, upd)

    if driver is None or driver >= floor:
        return fit("native", floor, update)
    blame = frozenset({"targets.driver"})
    native = what_driver_runs(matrix, driver)
    release = f"CUDA {update}" if update is not None else f"CUDA {cuda.version}"
    if driver >= major.min_driver:
        jit = [(g, b) for g in problem.active_gpus() for b in builds if b.needs_jit(g.cc)]
        if not jit:
            return fit("minor-version compatibility", major.min_driver)
        gpu, b = jit[0]
        only = f"{gpu.name} (CC {gpu.cc}) runs {b.framework} only by {b.runs_on(gpu.cc)}, which minor-version compatibility does not allow"
        return Reason(
            f"CUDA {cuda.version}",
            f"{only}: needs driver >= {floor} ({release})",
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
    needs = f"needs driver >= {floor} ({release})"
    if major.min_driver < floor:
        needs += f", or >= {major.min_driver} by CUDA {major.major}.x minor-version compatibility"
    return Reason(f"CUDA {cuda.version}", f"{needs}; {native}", blame, fact=native, kind=DRIVER)


def driver_floors(matrix: Matrix) -> list[Version]:
    """Every driver that some fact of the matrix names as a floor, ascending: toolkit GA and
    update releases, minor-version compatibility per major, and first drivers of GPU products.
    The smallest upgrade that solves a profile is one of them."""
    floors = {t.min_driver for t in matrix.toolkits} | {m.min_driver for m in matrix.majors}
    floors |= {u.min_driver for u in matrix.updates}
    floors |= {g.min_driver for g in matrix.gpus if g.min_driver is not None}
    return sorted(floors)


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
