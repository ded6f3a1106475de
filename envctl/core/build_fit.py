"""Whether one build of one framework release fits the profile's targets on one platform.

Python range, glibc floor, kernels for every GPU (SASS, PTX JIT or a documented floor), the last
CUDA that still targets each GPU, a cuDNN the build accepts that still has kernels for each GPU
(cuDNN 9.11 dropped CC < 7.5), and the driver. The solver asks these questions per build before
it combines frameworks.
"""

from __future__ import annotations

from packaging.version import Version

from envctl.core.constraints import Problem
from envctl.core.driver_fit import driver_fit
from envctl.core.matrix import Build, CudaToolkit, Framework, Matrix
from envctl.core.reasons import Reason, most_relevant, platform_blame, python_span


def single_viability(problem: Problem, matrix: Matrix, fw: Framework, v: Version) -> list[Reason]:
    """Reasons why ``fw`` at ``v`` cannot work on some platform on its own; empty if it can."""
    for platform in problem.platforms():
        why: list[Reason] = []
        ok = any(
            build_fits(problem, matrix, b, v, platform, cuda, why)
            for b in candidate_builds(
                fw, v, platform, problem.gpu_platform(platform), problem.extras(fw.name)
            )
            for cuda in (cuda_candidates(matrix, b) if problem.gpu_platform(platform) else [None])
        )
        if not ok:
            if not why:
                why.append(
                    Reason(
                        f"{fw.name} {v}",
                        f"has no build for {platform}"
                        + (" with CUDA" if problem.gpu_platform(platform) else "")
                        + _extras_text(problem.extras(fw.name) if problem.gpu_platform(platform) else ()),
                        platform_blame(problem, platform),
                    )
                )
            return most_relevant(why)
    return []


def _extras_text(extras: tuple[str, ...]) -> str:
    return f" and the {', '.join(extras)} extra" if extras else ""


def candidate_builds(
    fw: Framework, v: Version, platform: str, gpu: bool, extras: tuple[str, ...] = ()
) -> list[Build]:
    """Candidate builds in preference order: CUDA builds on GPU platforms, CPU builds elsewhere,
    PyPI before other indexes.
    Extras the profile names (``jax[cuda13]``) select among CUDA builds."""
    builds = [b for b in fw.builds_of(v) if platform in b.platforms]
    if gpu:
        builds = [b for b in builds if b.is_cuda and set(extras) <= set(b.extras)]
    else:
        # A CPU-only node gets a CPU build: a CUDA build would drag gigabytes of nvidia-* wheels
        # onto every node and make the lock's CPU-only check fail.
        builds = [b for b in builds if not b.is_cuda]
    return sorted(builds, key=lambda b: b.index.name != "pypi")


def cuda_candidates(matrix: Matrix, build: Build) -> list[CudaToolkit]:
    """The toolkits a CUDA build accepts, newest first."""
    assert build.cuda is not None
    return [t for t in reversed(matrix.toolkits) if t.version in build.cuda]


def build_fits(
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
                f"supports Python {python_span(b.python, matrix.python_versions)}; the profile asks {python}",
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
                    frozenset({gpu_id}) | platform_blame(problem, platform),
                    fact=f"CUDA after {info.last_cuda} no longer targets {gpu.name} (CC {gpu.cc})",
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
                    frozenset({gpu_id}) | platform_blame(problem, platform),
                )
            )
            return False
    why_cudnn = cudnn_gap(problem, matrix, b, cuda)
    if why_cudnn is not None:
        why.append(Reason(subject, why_cudnn.text, why_cudnn.blame | platform_blame(problem, platform)))
        return False
    fit = driver_fit(problem, matrix, cuda, [b])
    if isinstance(fit, Reason):
        why.append(Reason(subject, fit.text, fit.blame, fit.fact, fit.kind))
        return False
    return True


def cudnn_gap(problem: Problem, matrix: Matrix, b: Build, cuda: CudaToolkit) -> Reason | None:
    """Why no cuDNN release that ``b`` accepts (and that supports ``cuda``) has kernels for every
    GPU of the profile; None when one has. Builds without a cuDNN pin have nothing to check."""
    if b.cudnn is None or all(s.supports_gpu(g.cc) for s in matrix.cudnn for g in problem.active_gpus()):
        return None  # every series has kernels for these GPUs (Turing to Hopper): nothing to find
    usable = [s for v, s in matrix.cudnn_versions() if v in b.cudnn and s.supports_cuda(cuda.version)]
    if not usable:
        return None  # the loader refuses such a pin; nothing GPU-specific to say
    for gpu in problem.active_gpus():
        if not any(s.supports_gpu(gpu.cc) for s in usable):
            ranges = ", ".join(dict.fromkeys(f"cuDNN {s.series}: {s.cc_range()}" for s in usable))
            return Reason(
                f"{b.framework} ({b.variant})",
                f"its cuDNN ({b.cudnn}) has no kernels for {gpu.name} (CC {gpu.cc}): {ranges}",
                frozenset({f"targets.gpus.{gpu.name}"}),
            )
    return None
