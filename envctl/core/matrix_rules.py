"""Consistency rules of the compatibility matrix: facts in one row that other rows must back.

Each file can be well-formed on its own and the matrix still be wrong: a build pinning a cuDNN no
release matches, an arch its CUDA cannot compile, an alias naming two GPUs. The solver trusts the
matrix, so such a row would make it answer wrongly rather than fail; the loader refuses it instead.

``inconsistencies`` yields every broken rule as an ``Inconsistency`` naming the file, the row (a
value of the matrix, which the loader turns back into a key path) and the key at fault.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from packaging.version import Version

from envctl.core.matrix import Build, CudaToolkit, Framework, Matrix, major_minor
from envctl.core.shown import shown

_ADD_CC = "add a [[cc]] row to compute_capability.toml"


@dataclass(frozen=True)
class Inconsistency:
    """One broken rule: in ``file`` (a matrix file's stem), row ``row``, key ``key``."""

    file: str
    row: object  # the Build, Gpu, CudaToolkit, ... at fault
    key: str
    what: str
    hint: str | None = None


def inconsistencies(matrix: Matrix) -> Iterator[Inconsistency]:
    """Every rule the matrix breaks, file by file in the order the files build on each other."""
    yield from _toolkit_rules(matrix)
    yield from _update_rules(matrix)
    yield from _cc_rules(matrix)
    yield from _gpu_rules(matrix)
    yield from _cudnn_rules(matrix)
    for fw in matrix.frameworks:
        yield from _overlaps(fw)
        for build in fw.builds:
            yield from _build_rules(matrix, fw, build)
        yield from _pin_agreement(fw)  # after each row's own rules: a bad pin is named where it is


def _toolkit_rules(m: Matrix) -> Iterator[Inconsistency]:
    previous: CudaToolkit | None = None
    for t in m.toolkits:  # sorted by version
        if m.major(t.version.major) is None:
            yield Inconsistency(
                "cuda",
                t,
                "version",
                f"toolkit {t.version}: no [[major]] row for {t.version.major}",
                hint="add a [[major]] row to cuda.toml",
            )
        if previous is not None and previous.version == t.version:
            yield Inconsistency("cuda", t, "version", f"toolkit {t.version} is listed twice")
        elif previous is not None and t.min_driver < previous.min_driver:
            yield Inconsistency(
                "cuda",
                t,
                "min_driver",
                f"CUDA {t.version} needs driver {t.min_driver}, older than the {previous.min_driver} "
                f"CUDA {previous.version} needs",
                hint="a newer toolkit never runs on an older driver",
            )
        previous = t


def _update_rules(m: Matrix) -> Iterator[Inconsistency]:
    """An update release belongs to a listed toolkit, its GA release has the toolkit's floor, and a
    later update of the same minor never needs an older driver."""
    previous = None
    for u in m.updates:  # sorted by version
        toolkit = m.toolkit(u.toolkit)
        if toolkit is None:
            yield Inconsistency(
                "cuda",
                u,
                "version",
                f"update {u.version}: toolkit {u.toolkit} is not a [[toolkit]] row",
                hint="add the toolkit, or correct the version",
            )
        elif u.min_driver < toolkit.min_driver or (
            u.version.micro == 0 and u.min_driver != toolkit.min_driver
        ):
            yield Inconsistency(
                "cuda",
                u,
                "min_driver",
                f"update {u.version} needs driver {u.min_driver}, but CUDA {u.toolkit} GA needs {toolkit.min_driver}",
                hint="an x.y.0 release has its toolkit's floor; later updates need the same or newer",
            )
        if previous is not None and previous.version == u.version:
            yield Inconsistency("cuda", u, "version", f"update {u.version} is listed twice")
        elif previous is not None and previous.toolkit == u.toolkit and u.min_driver < previous.min_driver:
            yield Inconsistency(
                "cuda",
                u,
                "min_driver",
                f"update {u.version} needs driver {u.min_driver}, older than {previous.min_driver} of {previous.version}",
                hint="a later update of a toolkit never runs on an older driver",
            )
        if u.cudart is not None and major_minor(u.cudart) != u.toolkit:
            yield Inconsistency(
                "cuda",
                u,
                "cudart",
                f"update {u.version}: cudart {u.cudart} is not a CUDA {u.toolkit} runtime",
                hint="the runtime wheel's version starts with its toolkit's major.minor",
            )
        previous = u


def _cc_rules(m: Matrix) -> Iterator[Inconsistency]:
    for cc in m.ccs:
        if cc.last_cuda is not None and cc.last_cuda < cc.first_cuda:
            yield Inconsistency(
                "compute_capability",
                cc,
                "last_cuda",
                f"cc {cc.cc}: last_cuda {cc.last_cuda} is before first_cuda {cc.first_cuda}",
            )
        branch = cc.last_driver_branch
        if branch is not None:
            targets = [
                t
                for t in m.toolkits
                if t.version >= cc.first_cuda and (cc.last_cuda is None or t.version <= cc.last_cuda)
            ]
            if targets and not any(
                (major := m.major(t.version.major)) is not None and major.min_driver.major <= branch
                for t in targets
            ):
                yield Inconsistency(
                    "compute_capability",
                    cc,
                    "last_driver_branch",
                    f"cc {cc.cc}: no CUDA toolkit it can use runs on a driver of branch R{branch}",
                    hint="last_driver_branch is the newest driver branch that still drives the GPU",
                )


def _gpu_rules(m: Matrix) -> Iterator[Inconsistency]:
    known_ccs = {c.cc for c in m.ccs}
    owner: dict[str, str] = {}
    for gpu in m.gpus:
        if gpu.cc not in known_ccs:
            yield Inconsistency(
                "gpus",
                gpu,
                "cc",
                f"gpu {shown(gpu.name)}: cc {gpu.cc} is not in compute_capability.toml",
                hint=_ADD_CC,
            )
        info = m.cc_info(gpu.cc)
        branch = info.last_driver_branch if info is not None else None
        if gpu.min_driver is not None and branch is not None and gpu.min_driver.major > branch:
            yield Inconsistency(
                "gpus",
                gpu,
                "min_driver",
                f"gpu {shown(gpu.name)}: min_driver {gpu.min_driver} is past branch R{branch}, the last for CC {gpu.cc}",
                hint="no driver could drive it: correct min_driver or compute_capability.toml",
            )
        for name in sorted({gpu.name.lower(), *(a.lower() for a in gpu.aliases)}):
            if owner.setdefault(name, gpu.name) != gpu.name:
                yield Inconsistency(
                    "gpus",
                    gpu,
                    "aliases",
                    f"{shown(name)} names both {owner[name]} and {gpu.name}",
                    hint="names and aliases are case-insensitive and must be unique",
                )


def _cudnn_rules(m: Matrix) -> Iterator[Inconsistency]:
    for series in m.cudnn:
        for key, cc in (("min_cc", series.min_cc), ("max_cc", series.max_cc)):
            if m.cc_info(cc) is None:
                yield Inconsistency(
                    "cudnn",
                    series,
                    key,
                    f"cuDNN {series.series}: {key} {cc} is not in compute_capability.toml",
                    hint=_ADD_CC,
                )
        if series.max_cc < series.min_cc:
            yield Inconsistency(
                "cudnn",
                series,
                "max_cc",
                f"cuDNN {series.series}: max_cc {series.max_cc} is below min_cc {series.min_cc}",
                hint="min_cc and max_cc are the support matrix's lowest and highest compute capability",
            )
        for v in series.versions:
            if (v.major, v.minor) != (series.series.major, series.series.minor):
                yield Inconsistency(
                    "cudnn",
                    series,
                    "versions",
                    f"release {v} does not belong to series {series.series}",
                    hint="list it under the row of its own series",
                )


def _overlaps(fw: Framework) -> Iterator[Inconsistency]:
    """No release is listed twice for the same variant, index and platform."""
    seen: dict[tuple[str, str, str, Version], int] = {}
    for i, build in enumerate(fw.builds):
        for platform in build.platforms:
            for version in build.versions:
                key = (build.variant, build.index.name, platform, version)
                first = seen.setdefault(key, i)
                if first != i:
                    yield Inconsistency(
                        fw.name,
                        build,
                        "versions",
                        f"{_label(build)}: {version} on {platform} is already in build[{first}]",
                        hint="each (release, variant, index, platform) belongs to one row",
                    )


#: pins that must agree between builds that share their CUDA libraries' wheels
_SHARED_PINS = ("cuda", "cuda_update", "cudnn", "nccl")


def _pin_agreement(fw: Framework) -> Iterator[Inconsistency]:
    """One release's builds that take their CUDA libraries from pip agree on their pins.

    The PyPI build and the same variant on the framework's index are one build (same pins,
    same archs). And PyTorch pins one NCCL per CUDA major per release (its build matrix
    checks it): a cu126 build of 2.9 without the NCCL pin its cu128 twin has is an omission.
    """
    seen_twin: dict[tuple[object, ...], Build] = {}
    seen_nccl: dict[tuple[object, ...], Build] = {}
    for b in fw.builds:
        if b.cuda_libs != "pip" or b.cuda is None:
            continue
        cuda_major = min((s.version.split(".")[0] for s in b.cuda), default="")
        for version in b.versions:
            for platform in b.platforms:
                twin = seen_twin.setdefault((version, b.variant, platform, b.extras), b)
                if twin is not b:
                    for key in (*_SHARED_PINS, "archs", "ptx"):
                        if getattr(twin, key) != getattr(b, key):
                            yield Inconsistency(
                                fw.name,
                                b,
                                key,
                                f"{_label(b)}: {key} {_show(getattr(b, key))} differs from "
                                f"{_label(twin)}'s {_show(getattr(twin, key))} for {version} on {platform}",
                                hint="the same variant on PyPI and on the index is one build",
                            )
                            break
            first = seen_nccl.setdefault((version, cuda_major), b)
            if first is not b and first.nccl != b.nccl:
                yield Inconsistency(
                    fw.name,
                    b,
                    "nccl",
                    f"{_label(b)}: nccl {b.nccl or '(none)'} for {version}, but {_label(first)} pins "
                    f"{first.nccl or '(none)'} for the same CUDA major",
                    hint="a release pins one NCCL per CUDA major; pin it on every build that takes NCCL from pip",
                )


def _build_rules(m: Matrix, fw: Framework, b: Build) -> Iterator[Inconsistency]:
    label = _label(b)
    if not any(p in b.python for p in m.python_versions):
        yield Inconsistency(
            fw.name,
            b,
            "python",
            f"{label}: python {b.python} admits no version of python.toml",
            hint="python.toml lists every Python version envctl knows",
        )
    if not b.versions or list(b.versions) != sorted(set(b.versions)):
        yield Inconsistency(
            fw.name, b, "versions", f"{label}: versions must be non-empty, ascending and each listed once"
        )
    if b.cuda is None:
        return
    cudas = [t.version for t in m.toolkits if t.version in b.cuda]
    if not cudas:
        yield Inconsistency(
            fw.name,
            b,
            "cuda",
            f"{label}: cuda {b.cuda} matches no toolkit in cuda.toml",
            hint="add the toolkit to cuda.toml, or correct the specifier",
        )
    yield from _cudnn_pin(m, fw, b, label, cudas)
    yield from _arch_rules(m, fw, b, label, cudas)
    yield from _update_pin(m, fw, b, label)
    if b.cuda_libs in ("bundled", "system"):
        for key in ("nccl", "cublas"):
            if getattr(b, key) is not None:
                yield Inconsistency(
                    fw.name,
                    b,
                    key,
                    f"{label}: a build with cuda_libs = {shown(b.cuda_libs)} pins no {key} wheel",
                    hint='pins name nvidia-* wheels the build requires: only cuda_libs = "pip" has them',
                )


def _update_pin(m: Matrix, fw: Framework, b: Build, label: str) -> Iterator[Inconsistency]:
    """``cuda_update`` names a release of cuda.toml inside the build's one CUDA minor."""
    if b.cuda_update is None or b.cuda is None:
        return
    update = m.update(b.cuda_update)
    if update is None:
        yield Inconsistency(
            fw.name,
            b,
            "cuda_update",
            f"{label}: cuda_update {b.cuda_update} is not an [[update]] row of cuda.toml",
            hint="add the release (version, min_driver, cudart) to cuda.toml",
        )
    elif update.toolkit not in b.cuda or not all(s.operator == "==" for s in b.cuda):
        yield Inconsistency(
            fw.name,
            b,
            "cuda_update",
            f'{label}: cuda_update {b.cuda_update} needs cuda = "=={update.toolkit}", not {b.cuda}',
            hint="a build that accepts a range resolves to the newest update of the chosen minor",
        )


def _cudnn_pin(
    m: Matrix, fw: Framework, b: Build, label: str, cudas: list[Version]
) -> Iterator[Inconsistency]:
    """A CUDA build pins a cuDNN release of cudnn.toml that supports one of its CUDAs."""
    if b.cudnn is None:
        yield Inconsistency(
            fw.name,
            b,
            "cudnn",
            f"{label}: a CUDA build without a cudnn pin",
            hint='pin the cuDNN its wheels require, e.g. cudnn = "==9.1.0.70"',
        )
        return
    matching = [series for v, series in m.cudnn_versions() if v in b.cudnn]
    if not matching:
        yield Inconsistency(
            fw.name,
            b,
            "cudnn",
            f"{label}: cudnn {b.cudnn} matches no cuDNN release in cudnn.toml",
            hint="add the release to its series in cudnn.toml",
        )
    elif cudas and not any(s.supports_cuda(c) for s in matching for c in cudas):
        yield Inconsistency(
            fw.name,
            b,
            "cudnn",
            f"{label}: no cuDNN release matching {b.cudnn} supports CUDA {b.cuda}",
            hint="cudnn.toml says which CUDA toolkits each series supports",
        )


def _arch_rules(
    m: Matrix, fw: Framework, b: Build, label: str, cudas: list[Version]
) -> Iterator[Inconsistency]:
    """Every compiled arch (SASS or PTX) is a known one that each of the build's CUDAs can target."""
    if not b.archs and b.min_cc is None:
        yield Inconsistency(
            fw.name,
            b,
            "archs",
            f"{label}: neither archs nor min_cc",
            hint="list the compiled archs, or min_cc for a documented floor",
        )
    for key, archs in (("archs", b.archs), ("ptx", b.ptx), ("min_cc", (b.min_cc,) if b.min_cc else ())):
        for arch in archs:
            info = m.cc_info(arch)
            if info is None:
                yield Inconsistency(
                    fw.name,
                    b,
                    key,
                    f"{label}: arch {arch} is not in compute_capability.toml",
                    hint=_ADD_CC,
                )
                continue
            if key == "min_cc" or not cudas:
                continue  # a documented floor, not code compiled for it
            last = info.last_cuda
            cuda = next((c for c in cudas if c < info.first_cuda or (last and c > last)), None)
            if cuda is not None:
                yield Inconsistency(
                    fw.name,
                    b,
                    key,
                    f"{label}: CUDA {cuda} cannot compile for {arch} (CUDA {info.first_cuda}"
                    f"..{last or 'now'} can)",
                    hint="compute_capability.toml gives the CUDA range of each arch",
                )


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    return str(value) if value is not None and str(value) else "(none)"


def _label(b: Build) -> str:
    return f"{b.framework} {b.versions[0] if b.versions else '?'} {b.variant} ({b.index.name})"
