"""Checks a resolved platform lock against what the solution expects.

Pure: entries and the request in, a tuple of problems out (each names the packages involved).
Resolvers are trusted for consistency, not for agreeing with the solver; these checks catch the
classic GPU-stack failures: CUDA minors mixed in one closure, a cuDNN/NCCL other than the pinned
one, a wheel that needs a newer glibc or another CPU, a framework build from the wrong index or
with the wrong local label, and CUDA libraries on a CPU-only platform.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from envctl.core.lock import LockEntry
from envctl.core.solution import PlatformRequest

#: nvidia wheels whose version is the CUDA toolkit version (12.4.127 -> CUDA 12.4). Others
#: (cufft 11.x, curand 10.x, cudnn 9.x, nccl 2.x) carry their own library versions.
#: CUDA 11/12 wheels (-cu11, -cu12): cuda-*, nvjitlink and nvtx track the toolkit; cuBLAS only in
#: its 12.x wheels (cuBLAS 11.10.3.66 is CUDA 11.7's, 11.11.3.6 CUDA 11.8's).
_TOOLKIT_VERSIONED_CU = re.compile(r"nvidia-(cuda-[a-z0-9-]+?|nvjitlink|nvtx)-cu\d+|nvidia-cublas-cu12")
#: CUDA 13 wheels drop the suffix and fewer track the toolkit: cuda-toolkit 13.0.2 resolves to
#: nvidia-cublas 13.1.0.3 and 13.2.2 to nvidia-nvjitlink 13.5.37 (crt, nvvm, cccl drift too).
_TOOLKIT_VERSIONED_13 = re.compile(r"nvidia-(cuda-runtime|cuda-nvrtc|cuda-cupti|cuda-nvcc|nvtx)")
_CU_SUFFIX = re.compile(r"-cu(\d+)$")
_MANYLINUX = re.compile(r"manylinux_(\d+)_(\d+)_(.+)")
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_CONDA_CUDA = re.compile(r"(cudatoolkit|cuda-.+|cudnn|nccl|libcublas.*|libcudnn.*|libnccl.*)")


def check_platform(
    entries: Iterable[LockEntry], request: PlatformRequest, *, offline: bool
) -> tuple[str, ...]:
    """Every way ``entries`` (one platform) disagree with ``request``; empty when sound."""
    entries = tuple(entries)
    pip = [entry for entry in entries if entry.manager == "pip"]
    problems: list[str] = []
    problems += check_cuda(pip, request)
    problems += check_wheel_tags(pip, request)
    problems += check_index_pins(pip, request, offline=offline)
    if request.expect.cpu_only:
        gpu = [
            e
            for e in entries
            if e.name.startswith("nvidia-") or (e.manager == "conda" and _CONDA_CUDA.fullmatch(e.name))
        ]
        if gpu:
            problems.append(f"CPU-only platform {request.platform} pulls CUDA packages: {_names(gpu)}")
    return tuple(problems)


def cuda_of(entry: LockEntry) -> str | None:
    """The CUDA major.minor a toolkit-versioned nvidia wheel belongs to, else None."""
    if not (_TOOLKIT_VERSIONED_CU.fullmatch(entry.name) or _TOOLKIT_VERSIONED_13.fullmatch(entry.name)):
        return None
    release = _release(entry.version)
    return f"{release[0]}.{release[1]}" if len(release) >= 2 else None


def check_cuda(entries: Iterable[LockEntry], request: PlatformRequest) -> list[str]:
    """CUDA major from ``-cuNN`` names and major.minor of toolkit-versioned wheels agree."""
    expect = request.expect
    problems: list[str] = []
    nvidia = [e for e in entries if e.name.startswith("nvidia-")]
    if expect.cuda:
        major = expect.cuda.split(".")[0]
        wrong_major = [e for e in nvidia if (m := _CU_SUFFIX.search(e.name)) and m.group(1) != major]
        if wrong_major:
            problems.append(f"CUDA {major} expected but the lock has {_names(wrong_major)}")
    minors: dict[str, list[LockEntry]] = {}
    for entry in nvidia:
        cuda = cuda_of(entry)
        if cuda is not None:
            minors.setdefault(cuda, []).append(entry)
    if len(minors) > 1:
        parts = ", ".join(f"{cuda} ({_names(group)})" for cuda, group in sorted(minors.items()))
        problems.append(f"the closure mixes CUDA minor versions: {parts}")
    elif expect.cuda and minors and expect.cuda not in minors:
        ((found, group),) = minors.items()
        problems.append(f"CUDA {expect.cuda} expected but {_names(group)} are CUDA {found}")
    for label, wanted, prefix in (
        ("cuDNN", expect.cudnn, "nvidia-cudnn-"),
        ("NCCL", expect.nccl, "nvidia-nccl-"),
    ):
        if not wanted:
            continue
        wrong = [e for e in nvidia if e.name.startswith(prefix) and not _same_version(e.version, wanted)]
        if wrong:
            problems.append(f"{label} {wanted} expected but the lock has {_names(wrong)}")
    return problems


def wheel_fits(filename: str, *, glibc: str | None, cpu_arch: str) -> bool:
    """Whether any platform tag of the wheel runs on ``cpu_arch`` Linux with glibc >= its floor.

    A plain ``linux_<arch>`` tag (the PyTorch index's builds up to 2.5: torch-2.5.1+cu121-cp312-
    cp312-linux_x86_64.whl) states no glibc floor; it fits on the arch, and its floor is the
    matrix row's, which the solver already checked.
    """
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    floor = tuple(int(part) for part in glibc.split(".")[:2]) if glibc else None
    for tag in tags:
        platform = tag.platform
        if platform == "any":
            return True
        match = _MANYLINUX.fullmatch(platform)
        if match:
            need, arch = (int(match.group(1)), int(match.group(2))), match.group(3)
        else:
            legacy, _, arch = platform.partition("_")
            if legacy == "linux":
                need = (0, 0)
            elif legacy in _LEGACY_MANYLINUX:
                need = _LEGACY_MANYLINUX[legacy]
            else:
                continue  # musllinux, macOS, Windows: never fit a glibc Linux target
        if arch == cpu_arch and (floor is None or need <= floor):
            return True
    return False


def check_wheel_tags(entries: Iterable[LockEntry], request: PlatformRequest) -> list[str]:
    """Every wheel fits the platform's CPU arch and glibc floor (sdists are not judged here)."""
    expect = request.expect
    bad = [
        e
        for e in entries
        if e.filename.endswith(".whl")
        and not wheel_fits(e.filename, glibc=expect.glibc, cpu_arch=expect.cpu_arch)
    ]
    if not bad:
        return []
    floor = f"glibc {expect.glibc}, " if expect.glibc else ""
    files = ", ".join(e.filename for e in bad)
    return [f"wheels that do not fit {request.platform} ({floor}{expect.cpu_arch}): {files}"]


def check_index_pins(entries: Iterable[LockEntry], request: PlatformRequest, *, offline: bool) -> list[str]:
    """Pinned packages come from their index and carry exactly the expected local label."""
    by_name = {e.name: e for e in entries}
    problems: list[str] = []
    for pin in request.indexes:
        entry = by_name.get(pin.package)
        if entry is None:
            continue
        local = _local(entry.version)
        if local != pin.local_label:
            want = f"+{pin.local_label}" if pin.local_label else "no local label"
            problems.append(
                f"{entry.name} {entry.version} is the wrong build: expected {want} (from {pin.url})"
            )
        elif not offline and entry.index is not None and entry.index.rstrip("/") != pin.url.rstrip("/"):
            problems.append(
                f"{entry.name} {entry.version} came from {entry.index}, not from its index {pin.url}"
            )
    return problems


def _names(entries: Iterable[LockEntry]) -> str:
    return ", ".join(f"{e.name} {e.version}" for e in entries)


def _release(version: str) -> tuple[int, ...]:
    try:
        return Version(version).release
    except InvalidVersion:
        return ()


def _local(version: str) -> str | None:
    try:
        return Version(version).local
    except InvalidVersion:
        return None


def _same_version(found: str, wanted: str) -> bool:
    try:
        return Version(found) == Version(wanted)
    except InvalidVersion:
        return found == wanted
