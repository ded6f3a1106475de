"""Facts that can be read off published wheels: Python range, glibc floor, platforms, pins.

Pure functions over values an index adapter returns (file names and METADATA text); no I/O.
``envctl matrix refresh`` uses them to re-derive the PyPI-readable columns of compat_matrix/.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.parser import HeaderParser

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.tags import Tag
from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

#: wheel platform-tag machine -> conda subdir
_MACHINES = {"x86_64": "linux-64", "aarch64": "linux-aarch64"}
#: legacy manylinux aliases -> glibc (PEP 600)
_LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
_PEP600 = re.compile(r"manylinux_(\d+)_(\d+)_(\w+)")
_LEGACY = re.compile(r"(manylinux1|manylinux2010|manylinux2014)_(\w+)")
_CPYTHON = re.compile(r"cp3(\d+)")


@dataclass(frozen=True)
class IndexFile:
    """One file an index lists for a project (PEP 691 JSON simple API)."""

    filename: str
    url: str
    requires_python: str | None = None
    yanked: bool = False


@dataclass(frozen=True)
class LinuxWheel:
    """A Linux wheel of a release, reduced to what the matrix cares about."""

    file: IndexFile
    version: Version
    platform: str  # conda subdir
    glibc: tuple[int, int]  # lowest glibc among its platform tags
    pythons: frozenset[int]  # CPython 3.x minors it has a binary for (empty: pure/abi3)


def linux_wheel(file: IndexFile) -> LinuxWheel | None:
    """Parse a file name into a LinuxWheel, or None for sdists, other OSes and bad names."""
    if not file.filename.endswith(".whl"):
        return None
    try:
        _name, version, _build, tags = parse_wheel_filename(file.filename)
    except (InvalidWheelFilename, InvalidVersion):
        return None
    platform, glibc = _platform_and_glibc(tags)
    if platform is None or glibc is None:
        return None
    pythons = frozenset(
        int(m.group(1)) for tag in tags if (m := _CPYTHON.fullmatch(tag.interpreter)) is not None
    )
    return LinuxWheel(file, version, platform, glibc, pythons)


def pure_wheel(file: IndexFile) -> LinuxWheel | None:
    """A pure-Python wheel (``-none-any``) as a LinuxWheel for every platform ("any"), or None."""
    if not file.filename.endswith("-none-any.whl"):
        return None
    try:
        version = Version(file.filename.split("-")[1])
    except (InvalidVersion, IndexError):
        return None
    return LinuxWheel(file, version, "any", (0, 0), frozenset())


def _platform_and_glibc(tags: frozenset[Tag]) -> tuple[str | None, tuple[int, int] | None]:
    platform: str | None = None
    glibc: tuple[int, int] | None = None
    for tag in tags:
        pep600 = _PEP600.fullmatch(tag.platform)
        legacy = _LEGACY.fullmatch(tag.platform)
        if pep600 is not None:
            floor, machine = (int(pep600.group(1)), int(pep600.group(2))), pep600.group(3)
        elif legacy is not None:
            floor, machine = _LEGACY_MANYLINUX[legacy.group(1)], legacy.group(2)
        else:
            continue
        if machine in _MACHINES:
            platform = _MACHINES[machine]
            glibc = floor if glibc is None else min(glibc, floor)
    return platform, glibc


def python_range(minors: set[int] | frozenset[int]) -> str | None:
    """``{9, 10, 11}`` -> ``">=3.9,<3.12"``; None when there are no CPython-specific wheels."""
    if not minors:
        return None
    return f">=3.{min(minors)},<3.{max(minors) + 1}"


def glibc_text(floor: tuple[int, int]) -> str:
    """``(2, 17)`` -> ``"2.17"``."""
    return f"{floor[0]}.{floor[1]}"


#: nvidia wheels whose versions are the toolkit's own (nvidia-cuda-nvcc-cu12 12.6.85 ships with CUDA 12.6),
#: so each pin bounds the CUDA toolkit; cuBLAS follows the toolkit's minor only in its 12.x wheels
_TOOLKIT_VERSIONED = re.compile(
    r"(nvidia-cuda-(runtime|nvcc|cupti|nvrtc)|nvidia-nvjitlink)(-cu\d+)?|cuda-toolkit|nvidia-cublas-cu12"
)


def toolkit_range(pins: dict[str, str]) -> str | None:
    """The CUDA toolkits every toolkit-versioned pin allows, as a range over major.minor.

    ``{"nvidia-cuda-runtime-cu12": ">=12.1.105", "nvidia-cuda-nvcc-cu12": ">=12.6.85"}`` ->
    ``">=12.6,<13"`` (jax-cuda12-plugin from 0.4.36: the nvcc floor, not the runtime's, decides);
    ``nvidia-cublas-cu12 <12.9`` caps it at ``<12.9`` (jax 0.6.1); an exact pin gives ``==12.8``.
    None when no pin names a toolkit-versioned wheel.
    """
    relevant = {n: s for n, s in pins.items() if _TOOLKIT_VERSIONED.fullmatch(n) and s}
    if not relevant:
        return None
    for name in sorted(relevant):  # the runtime/toolkit pin first: it names the toolkit best
        exact = [x for x in SpecifierSet(relevant[name]) if x.operator == "=="]
        if exact and not name.startswith("nvidia-cublas"):
            return "==" + ".".join(exact[0].version.split(".")[:2])
    low: Version | None = None
    high: tuple[Version, bool] | None = None  # (bound, inclusive)
    for name, text in relevant.items():
        suffix = re.search(r"-cu(\d+)$", name)
        for spec in SpecifierSet(text):
            v = Version(spec.version.replace(".*", ""))
            mm = Version(f"{v.major}.{v.minor}")
            if spec.operator in (">=", "~=", ">", "=="):
                low = mm if low is None else max(low, mm)
            elif spec.operator in ("<", "<="):
                inclusive = spec.operator == "<=" or any(v.release[2:])  # <12.9.5 still allows some 12.9
                bound = (mm, inclusive)
                high = bound if high is None or _tighter(bound, high) else high
        if suffix:
            cap = (Version(f"{int(suffix.group(1)) + 1}.0"), False)
            high = cap if high is None or _tighter(cap, high) else high
    if low is not None and high is None:
        high = (Version(f"{low.major + 1}.0"), False)
    parts = []
    if low is not None:
        parts.append(f">={low}")
    if high is not None:
        top, inclusive = high
        text_top = str(top.major) if top.minor == 0 and not inclusive else str(top)
        parts.append(f"{'<=' if inclusive else '<'}{text_top}")
    return ",".join(parts)


def _tighter(a: tuple[Version, bool], b: tuple[Version, bool]) -> bool:
    """Whether upper bound ``a`` admits fewer toolkits than ``b``."""
    if a[0] != b[0]:
        return a[0] < b[0]
    return not a[1] and b[1]


def runtime_release(pins: dict[str, str]) -> str | None:
    """What an exact runtime pin says about the toolkit release: ``cuda-toolkit==13.0.2`` is the
    release itself; ``nvidia-cuda-runtime-cu12==12.8.90`` is a cudart version (12.8 Update 1's)."""
    for name in sorted(pins):
        if name == "cuda-toolkit" or re.fullmatch(r"nvidia-cuda-runtime(-cu\d+)?", name):
            exact = [x for x in SpecifierSet(pins[name]) if x.operator == "=="]
            if exact:
                kind = "toolkit" if name == "cuda-toolkit" else "cudart"
                return f"{kind}:{exact[0].version}"
    return None


@dataclass(frozen=True)
class Pin:
    """One Requires-Dist line that applies on a given platform."""

    name: str  # normalised project name
    specifier: str  # e.g. "==9.1.0.70" or ">=9.8,<10"
    extras: tuple[str, ...] = ()


def parse_metadata(text: str) -> tuple[str | None, list[Requirement]]:
    """Return (Requires-Python, Requires-Dist requirements) of a core-metadata document."""
    headers = HeaderParser().parsestr(text, headersonly=True)
    requirements: list[Requirement] = []
    for line in headers.get_all("Requires-Dist") or []:
        try:
            requirements.append(Requirement(line))
        except InvalidRequirement:
            continue  # a malformed line in someone else's wheel is not ours to reject
    return headers.get("Requires-Python"), requirements


def active_pins(
    requirements: list[Requirement], machine: str, python: str, extras: tuple[str, ...] = ()
) -> dict[str, Pin]:
    """The requirements that apply on Linux/``machine`` under ``python`` with ``extras`` on."""
    pins: dict[str, Pin] = {}
    for extra in ("", *extras):
        env = {
            "platform_system": "Linux",
            "sys_platform": "linux",
            "platform_machine": machine,
            "python_version": python,
            "python_full_version": f"{python}.0",
            "extra": extra,
        }
        for req in requirements:
            if req.marker is not None and not req.marker.evaluate(env):
                continue
            if req.marker is None and extra:
                continue  # unconditional lines were taken in the first pass
            name = re.sub(r"[-_.]+", "-", req.name).lower()
            pins[name] = Pin(name, str(req.specifier), tuple(sorted(req.extras)))
    return pins


#: framework -> the wheel member that names the GPU archs compiled in
ARCH_MEMBERS = {"torch": "lib/libtorch_python.so", "tensorflow": "platform/build_info.py"}
_TORCH_ARCHS = re.compile(rb"(?:sm|compute)_\d+[af]?(?: (?:sm|compute)_\d+[af]?)+")
_TF_ARCHS = re.compile(rb"'cuda_compute_capabilities', \[([^\]]*)\]")
_ARCH = re.compile(r"(sm|compute)_(\d+?)(\d)[af]?")


def archs_from_member(framework: str, data: bytes) -> tuple[list[str], list[str]] | None:
    """(SASS archs, PTX archs) as ``"8.6"`` strings from a framework's arch record, or None.

    torch keeps its ``TORCH_CUDA_ARCH_LIST`` as one string ("sm_80 sm_86 ...") in
    libtorch_python.so; TensorFlow writes ``cuda_compute_capabilities`` into build_info.py, where
    ``compute_XY`` means PTX only. Arch-specific variants (sm_90a) are folded into their base.
    """
    if framework == "torch":
        match = _TORCH_ARCHS.search(data)
        names = match.group(0).decode().split() if match else []
    elif framework == "tensorflow":
        match = _TF_ARCHS.search(data)
        names = re.findall(r"'([^']+)'", match.group(1).decode()) if match else []
    else:
        return None
    if not names:
        return None
    sass: list[str] = []
    ptx: list[str] = []
    for name in names:
        parsed = _ARCH.fullmatch(name)
        if parsed is None:
            continue
        kind, major, minor = parsed.groups()
        target = sass if kind == "sm" else ptx
        if f"{major}.{minor}" not in target:
            target.append(f"{major}.{minor}")
    return sass, ptx
