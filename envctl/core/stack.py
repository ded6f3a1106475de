"""The solver's public face: ``solve(profile, matrix)`` returns a ``Solution`` or raises
``UnsatisfiableError`` carrying an ``Explanation``."""

from __future__ import annotations

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envctl.core.constraints import Problem, make_problem
from envctl.core.decisions import decisions
from envctl.core.explain import explain
from envctl.core.matrix import Build, Matrix, cc_label
from envctl.core.profile import Profile
from envctl.core.solution import (
    PLATFORMS,
    BuildChoice,
    Expectations,
    FrameworkChoice,
    GpuFit,
    IndexPin,
    PlatformRequest,
    Solution,
)
from envctl.core.solver import Found, NotFound, search
from envctl.errors import UnsatisfiableError


def solve(profile: Profile, matrix: Matrix) -> Solution:
    """The newest consistent stack for ``profile``; UnsatisfiableError explains a conflict."""
    problem = make_problem(profile, matrix)
    result = search(problem, matrix)
    if isinstance(result, NotFound):
        explanation = explain(problem, matrix, result)
        raise UnsatisfiableError(explanation.message, hint=explanation.hint, explanation=explanation)
    return to_solution(problem, matrix, result)


def to_solution(problem: Problem, matrix: Matrix, found: Found) -> Solution:
    profile = problem.profile
    cuda = found.cuda
    warnings: list[str] = []
    frameworks = []
    for i, (fw, version) in enumerate(found.versions):
        builds = {p: _choice(picks[i], version) for p, picks in found.builds.items()}
        frameworks.append(FrameworkChoice(fw.name, str(version), builds))

    gpus = []
    gpu_picks = [(p, b) for p, picks in found.builds.items() if problem.gpu_platform(p) for b in picks]
    gpu_builds = [b for _, b in gpu_picks]
    several = len({p for p, _ in gpu_picks}) > 1
    for gpu in problem.active_gpus():
        via = "; ".join(
            f"{b.framework}{' ' + p if several else ''}: {b.runs_on(gpu.cc)}" for p, b in gpu_picks
        )
        gpus.append(GpuFit(gpu.name, str(gpu.cc), via))
        if any(b.needs_jit(gpu.cc) for b in gpu_builds):
            warnings.append(
                f"{gpu.name} (CC {gpu.cc}) runs by PTX JIT: the first start compiles kernels (slow) and needs a driver that knows the PTX"
            )

    if found.driver is not None and found.driver.mode == "forward compatibility":
        warnings.append(
            "forward compatibility: the image must carry NVIDIA's cuda-compat package for this CUDA, and works on data-center GPUs only"
        )
    if found.driver is not None and found.driver.mode == "minor-version compatibility":
        warnings.append(
            f"driver below CUDA {cuda.version if cuda else ''}'s own minimum: runs by minor-version compatibility (no PTX JIT of newer PTX)"
        )
    if found.blas == "mkl" and profile.targets.cpu_vendor == "amd":
        warnings.append(
            "MKL on AMD CPUs falls back to slow code paths (MKL_DEBUG_CPU_TYPE no longer helps); consider blas.prefer = 'openblas'"
        )
    if any(b.cuda_libs == "system" for b in gpu_builds):
        warnings.append(
            "a framework here loads CUDA/cuDNN from the system: they come from conda (cudatoolkit, cudnn) or the base image"
        )

    requests = tuple(_request(problem, found, platform) for platform in problem.platforms())
    chosen = decisions(problem, matrix, found)
    return Solution(
        profile=profile.name,
        python=str(found.python),
        platforms=problem.platforms(),
        frameworks=tuple(frameworks),
        cuda=str(cuda.version) if cuda else None,
        cudnn=str(found.cudnn) if found.cudnn else None,
        nccl=str(found.nccl) if found.nccl else None,
        blas=found.blas,
        min_driver=str(found.driver.min_driver) if found.driver else None,
        driver_mode=found.driver.mode if found.driver else None,
        gpus=tuple(gpus),
        requests=requests,
        decisions=tuple(chosen),
        warnings=tuple(warnings),
        matrix_version=matrix.version,
    )


def _choice(b: Build, version: Version) -> BuildChoice:
    archs = tuple(cc_label(a) for a in b.archs) + tuple(cc_label(p, ptx=True) for p in b.ptx)
    return BuildChoice(b.variant, b.index.url, b.requirement(version), archs)


def _request(problem: Problem, found: Found, platform: str) -> PlatformRequest:
    arch, stem = PLATFORMS[platform]
    glibc = problem.glibc_or_default()
    gpu = problem.gpu_platform(platform)
    picks = found.builds[platform]
    requirements = [b.requirement(v) for b, (_, v) in zip(picks, found.versions, strict=True)]
    requirements += list(problem.profile.pip)
    if found.blas == "mkl" and problem.profile.blas == "mkl":
        requirements.append("mkl")
    cuda = found.cuda if gpu else None
    constraints = _library_pins(picks, cuda.version, found.cudnn) if cuda is not None else []
    indexes = tuple(
        IndexPin(b.package, b.index.url, b.index.local_label) for b in picks if b.index.name != "pypi"
    )
    conda_specs = list(problem.profile.conda)
    channels = list(problem.profile.channels)
    if cuda is not None and any(b.cuda_libs == "system" for b in picks):
        conda_specs.append(f"cudatoolkit={cuda.version}")
        if found.cudnn is not None:
            conda_specs.append(f"cudnn={found.cudnn.major}.{found.cudnn.minor}")
        if "conda-forge" not in channels:
            channels.append("conda-forge")
    virtual = {"__linux": "5.10", "__glibc": str(glibc), "__archspec": arch}
    if cuda is not None:
        virtual["__cuda"] = str(cuda.version)
    expect = Expectations(
        cuda=str(cuda.version) if cuda else None,
        cudnn=str(found.cudnn) if gpu and found.cudnn else None,
        nccl=str(found.nccl) if gpu and found.nccl else None,
        glibc=str(glibc),
        cpu_arch=arch,
        cpu_only=not gpu,
    )
    return PlatformRequest(
        platform=platform,
        python_version=str(found.python),
        python_platform=f"{stem}-manylinux_{glibc.major}_{glibc.minor}",
        requirements=tuple(requirements),
        constraints=tuple(constraints),
        indexes=indexes,
        conda_channels=tuple(channels),
        conda_specs=tuple(conda_specs),
        virtual_packages=virtual,
        expect=expect,
    )


#: nvidia-* wheels whose versions follow the CUDA toolkit's (12.8.x for CUDA 12.8)
_TOOLKIT_WHEELS_CU = (  # -cu11 / -cu12 wheels
    "cuda-runtime", "cuda-cupti", "cuda-nvcc", "cuda-nvrtc", "cuda-cccl", "cublas", "nvjitlink", "nvtx",
)  # fmt: skip
_TOOLKIT_WHEELS_13 = ("cuda-runtime", "cuda-nvrtc", "cuda-cupti", "cuda-nvcc", "nvtx")  # no suffix


def _library_pins(picks: tuple[Build, ...], cuda: Version, cudnn: Version | None) -> list[str]:
    """Constraints that hold every toolkit-versioned nvidia wheel of the closure to the chosen CUDA
    minor, and ranged builds (JAX's plugins, TensorFlow >= 2.20) to the chosen cuDNN. Exact builds
    need them too: torch 2.1-2.4's nvidia-cusparse-cu12 requires nvidia-nvjitlink-cu12 with no
    version, and a resolver takes 12.9 beside their 12.1 runtime. Constraints add no package to
    the closure."""
    pip = [b for b in picks if b.cuda_libs == "pip" and b.cuda is not None]
    if not pip:
        return []
    major = cuda.major
    names: tuple[str, ...]
    if major >= 13:
        names, suffix = _TOOLKIT_WHEELS_13, ""
    elif major == 12:
        names, suffix = _TOOLKIT_WHEELS_CU, "-cu12"
    else:  # cuBLAS 11.x is numbered on its own (11.11.3.6 ships with CUDA 11.8)
        names, suffix = tuple(n for n in _TOOLKIT_WHEELS_CU if n != "cublas"), f"-cu{major}"
    pins = [f"nvidia-{name}{suffix}=={cuda.major}.{cuda.minor}.*" for name in names]
    if cudnn is not None and any(b.cudnn is not None and not _exact(b.cudnn) for b in pip):
        pins.append(f"nvidia-cudnn-cu{major}=={cudnn}")
    return pins


def _exact(spec: SpecifierSet) -> bool:
    return bool(spec) and all(s.operator == "==" for s in spec)
