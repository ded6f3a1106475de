"""Why each part of a solved stack is what it is, and why the alternative that would have been
preferred lost: "12.4 (PyPI default, cu124) would run only by minor-version compatibility on
535.104.05; 12.1 runs natively", not just "newest CUDA that fits".
"""

from __future__ import annotations

from packaging.version import Version

from envctl.core.build_fit import candidate_builds
from envctl.core.constraints import Problem
from envctl.core.matrix import Build, CudaToolkit, Framework, Matrix
from envctl.core.reasons import Reason, python_span, span, spec_text
from envctl.core.solution import Decision
from envctl.core.solver import Found


def decisions(problem: Problem, matrix: Matrix, found: Found) -> list[Decision]:
    """One decision per choice of ``found``, each saying why the preferred alternative lost."""
    out = [_framework(problem, found, fw, v) for fw, v in found.versions]
    if found.cuda is not None:
        out.append(
            Decision("cuda", str(found.cuda.version), _cuda_because(problem, matrix, found, found.cuda))
        )
        if found.driver is not None:
            out.append(Decision("driver", f">= {found.driver.min_driver}", _driver_because(problem, found)))
    for platform, picks in found.builds.items():
        for b in picks:
            version = next(v for fw, v in found.versions if fw.name == b.framework)
            because = _index_because(problem, found, b, version, platform)
            out.append(Decision(f"index:{b.framework}:{platform}", b.index.url, because))
    out.append(Decision("python", str(found.python), _python_because(problem, matrix, found)))
    if found.cudnn is not None:
        out.append(Decision("cudnn", str(found.cudnn), _cudnn_because(found)))
    if found.nccl is not None:
        out.append(Decision("nccl", str(found.nccl), "pinned by the chosen build"))
    out.append(Decision("blas", found.blas, _blas_because(problem, found)))
    return out


def _framework(problem: Problem, found: Found, fw: Framework, version: Version) -> Decision:
    request = next(f for f in problem.profile.frameworks if f.name == fw.name)
    spec = problem.spec(request)
    newer = [v for v in fw.versions() if v > version and v in spec]
    if not newer:
        if [v for v in fw.versions() if v > version]:
            because = f"newest release {request.key} = '{request.spec}' allows"
        else:
            because = "newest release the matrix knows"
        return Decision(fw.name, str(version), because)
    first = min(newer)
    why = _reason_for(found.rejected, f"{fw.name} {first}")
    because = (
        f"newest that fits; {first}: {why}"
        if why
        else f"newest that fits with the frameworks before it ({first} did not)"
    )
    return Decision(fw.name, str(version), because)


def _cuda_because(problem: Problem, matrix: Matrix, found: Found, cuda: CudaToolkit) -> str:
    """Name the newer toolkits some chosen build offers and why each lost."""
    gpu = [p for p in found.builds if problem.gpu_platform(p)]
    offered: dict[Version, list[str]] = {}  # toolkit -> "torch cu124 (PyPI default)"
    for fw, v in found.versions:
        for p in gpu:
            for b in candidate_builds(fw, v, p, True, problem.extras(fw.name)):
                for t in matrix.toolkits:
                    if b.cuda is not None and t.version in b.cuda and t.version > cuda.version:
                        offered.setdefault(t.version, []).append(_build_label(b))
    chosen = sorted({b.variant for p in gpu for b in found.builds[p]})
    base = f"newest CUDA that every chosen build ({', '.join(chosen)}) supports"
    lost: dict[str, list[str]] = {}  # why -> the toolkits it rules out
    for version in sorted(offered, reverse=True)[:3]:
        toolkit = matrix.toolkit(version)
        assert toolkit is not None
        pypi = [label for label in offered[version] if label.startswith("PyPI")]
        label = pypi[0] if pypi else offered[version][0]
        lost.setdefault(_why_lost(problem, matrix, found, toolkit), []).append(f"{version} ({label})")
    if not lost:
        return base
    how = "natively" if found.driver is None or found.driver.mode == "native" else f"by {found.driver.mode}"
    parts = [f"{', '.join(alternatives)}: {why}" for why, alternatives in lost.items()]
    return f"{base}; " + "; ".join(parts) + f"; {cuda.version} runs {how}"


def _driver_because(problem: Problem, found: Found) -> str:
    assert found.driver is not None and found.cuda is not None
    drv, mode = problem.driver(), found.driver.mode
    if mode == "native":
        release = found.driver.update
        because = (
            f"native minimum of CUDA {release} (the update release the chosen wheels carry)"
            if release is not None
            else f"CUDA {found.cuda.version} GA minimum"
        )
    else:
        because = f"CUDA {found.cuda.version} by {mode}"
    if found.driver.gpu_floor:
        because += f"; {found.driver.gpu_floor}"
    return because + (f"; nodes have {drv}" if drv else "; no driver given in targets")


def _why_lost(problem: Problem, matrix: Matrix, found: Found, toolkit: CudaToolkit) -> str:
    for gpu in problem.active_gpus():
        info = matrix.cc_info(gpu.cc)
        if info is not None and info.last_cuda is not None and toolkit.version > info.last_cuda:
            return f"no longer targets {gpu.name} (CC {gpu.cc}; last CUDA {info.last_cuda})"
    missing = [
        f"{fw.name} {v}"
        for fw, v in found.versions
        if not any(
            b.cuda is not None and toolkit.version in b.cuda
            for p in found.builds
            if problem.gpu_platform(p)
            for b in candidate_builds(fw, v, p, True, problem.extras(fw.name))
        )
    ]
    if missing:
        return f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} no build for it"
    driver = problem.driver()
    major = matrix.major(toolkit.version.major)
    if driver is not None and major is not None and driver < toolkit.min_driver:
        if driver < major.min_driver:
            return (
                f"needs driver >= {major.min_driver} (CUDA {major.major}.x minor-version compatibility), "
                f"and the nodes have {driver}"
            )
        why = _reason_for(found.rejected, f"CUDA {toolkit.version}")
        return why or f"would run only by minor-version compatibility on {driver}"
    why = _reason_for(found.rejected, f"CUDA {toolkit.version}")
    if why:
        return why
    builds = [r for r in found.rejected if any(f"({v})" in r.subject for v in _variants_for(toolkit))]
    return builds[0].text if builds else "did not fit the rest of the stack"


def _variants_for(toolkit: CudaToolkit) -> list[str]:
    v = toolkit.version
    return [f"cu{v.major}{v.minor}", f"cuda{v.major}"]


def _build_label(b: Build) -> str:
    return f"PyPI default {b.variant}" if b.index.name == "pypi" else f"{b.index.name} index"


def _index_because(problem: Problem, found: Found, b: Build, version: Version, platform: str) -> str:
    if b.index.name == "pypi":
        because = "PyPI default build"
    else:
        fw = next(f for f, _ in found.versions if f.name == b.framework)
        gpu = problem.gpu_platform(platform)
        pypi = [
            c
            for c in candidate_builds(fw, version, platform, gpu, problem.extras(fw.name))
            if c.index.name == "pypi"
        ]
        if not pypi:
            because = (
                f"PyPI has no {'CUDA' if gpu else 'CPU'} build of {b.framework} {version} for {platform}"
            )
        else:
            c = pypi[0]
            why = _reason_for(found.rejected, f"{b.framework} {version} ({c.variant})")
            if why:
                because = f"the PyPI build ({c.variant}) lost: {why}"
            elif c.cuda is not None and found.cuda is not None and found.cuda.version not in c.cuda:
                because = f"the PyPI build ({c.variant}) is for CUDA {spec_text(c.cuda).lstrip('=')}, which lost to {found.cuda.version} (see cuda)"
            else:
                because = (
                    f"the PyPI build ({c.variant}) did not fit; only the {b.index.name} index has this one"
                )
    if not problem.gpu_platform(platform):
        because = f"CPU-only platform: {b.variant} build; " + because
    return because


def _python_because(problem: Problem, matrix: Matrix, found: Found) -> str:
    py = problem.python()
    base = f"newest Python allowed by {'the profile (' + str(py) + ') and ' if str(py) else ''}every chosen build"
    newer = [v for v in matrix.python_versions if v > found.python]
    if not newer:
        return base
    first = min(newer)
    if first not in py:
        return f"{base}; {first}: the profile asks {py}"
    builds = [b for picks in found.builds.values() for b in picks if first not in b.python]
    if builds:
        b = builds[0]
        version = next(v for fw, v in found.versions if fw.name == b.framework)
        return f"{base}; {first}: {b.framework} {version} ({b.variant}) supports Python {python_span(b.python, matrix.python_versions)}"
    return base


def _cudnn_because(found: Found) -> str:
    cuda = str(found.cuda.version if found.cuda else "")
    pins = []
    for picks in found.builds.values():
        for b in picks:
            if b.cudnn is not None:
                version = next(v for fw, v in found.versions if fw.name == b.framework)
                pins.append(f"{b.framework} {version} ({b.variant}) {spec_text(b.cudnn)}")
    exact = found.cudnn is not None and all(
        s.operator == "==" for picks in found.builds.values() for b in picks if b.cudnn for s in b.cudnn
    )
    if exact:
        return f"pinned by {span(list(dict.fromkeys(pins)))}"
    return f"newest cuDNN supporting CUDA {cuda} within " + ", ".join(dict.fromkeys(pins))


def _blas_because(problem: Problem, found: Found) -> str:
    vendor = problem.profile.targets.cpu_vendor
    if found.blas == "mkl":
        return (
            "MKL requested and available on every platform"
            if problem.blas() == "mkl"
            else "Intel CPUs on x86_64 only: MKL is fastest there"
        )
    if problem.blas() == "openblas":
        return "requested"
    return f"MKL not chosen (CPU vendor {vendor}, platforms {', '.join(problem.platforms())})"


def _reason_for(reasons: tuple[Reason, ...], subject_prefix: str) -> str | None:
    for r in reasons:
        if r.subject == subject_prefix or r.subject.startswith(subject_prefix + " "):
            return r.text
    return None
