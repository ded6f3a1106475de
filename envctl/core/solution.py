"""What the solver returns, and what the lock step consumes.

A ``Solution`` is a value: every chosen version, the reason behind each choice, and for every
target platform a ``PlatformRequest`` that says exactly what a resolver (uv for PyPI, rattler for
conda) must lock. The lock step never re-derives compatibility facts; it trusts these requests and
checks its result against ``Expectations``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

SOLUTION_SCHEMA = "envctl.solution/1"

#: conda subdir -> (CPU arch as uname prints it, uv --python-platform stem)
PLATFORMS: dict[str, tuple[str, str]] = {
    "linux-64": ("x86_64", "x86_64"),
    "linux-aarch64": ("aarch64", "aarch64"),
}


@dataclass(frozen=True)
class IndexPin:
    """A package that must come from one specific index, never from another."""

    package: str  # normalised project name, e.g. "torch"
    url: str  # simple-index URL, e.g. "https://download.pytorch.org/whl/cu121"
    local_label: str | None = None  # e.g. "cu121": every locked version must carry "+cu121"


@dataclass(frozen=True)
class Expectations:
    """What a correct lock for one platform must agree with (checked after resolving)."""

    cuda: str | None = None  # "12.4": every nvidia-*-cu12 runtime library must be 12.4.*
    cudnn: str | None = None  # exact cuDNN version when the solution pins one
    nccl: str | None = None
    glibc: str | None = None  # the targets' glibc floor: no wheel may need a newer one
    cpu_arch: str = "x86_64"
    cpu_only: bool = False  # a CPU-only platform must not pull nvidia-* packages


@dataclass(frozen=True)
class PlatformRequest:
    """Everything a resolver needs to lock one platform, and nothing it has to guess."""

    platform: str  # conda subdir: "linux-64" | "linux-aarch64"
    python_version: str  # "3.12"
    python_platform: str  # uv --python-platform, e.g. "x86_64-manylinux_2_28"
    requirements: tuple[str, ...]  # PEP 508 lines for PyPI-style packages
    constraints: tuple[str, ...] = ()  # versions for packages *if* the closure needs them
    indexes: tuple[IndexPin, ...] = ()
    conda_channels: tuple[str, ...] = ()
    conda_specs: tuple[str, ...] = ()  # match specs, e.g. "cudatoolkit=11.2"
    virtual_packages: dict[str, str] = field(default_factory=dict)  # "__cuda": "12.4", ...
    expect: Expectations = field(default_factory=Expectations)


@dataclass(frozen=True)
class FrameworkChoice:
    """One framework at one version, with the build chosen for each platform."""

    name: str
    version: str
    builds: dict[str, BuildChoice]  # platform -> build


@dataclass(frozen=True)
class BuildChoice:
    variant: str  # "cu124" | "cpu"
    index: str  # index URL ("https://pypi.org/simple" for PyPI)
    requirement: str  # the PEP 508 line that selects exactly this build
    archs: tuple[str, ...] = ()  # "sm_90", "compute_90" (PTX)


@dataclass(frozen=True)
class GpuFit:
    """How one target GPU runs the chosen stack."""

    name: str
    cc: str
    runs_via: str  # "sm_86 code" | "PTX JIT from compute_90"


@dataclass(frozen=True)
class Decision:
    """Why one part of the solution is what it is."""

    subject: str  # "torch", "cuda", "python", "index:torch", ...
    choice: str
    because: str


@dataclass(frozen=True)
class Solution:
    profile: str
    python: str
    platforms: tuple[str, ...]
    frameworks: tuple[FrameworkChoice, ...]
    cuda: str | None
    cudnn: str | None
    nccl: str | None
    blas: str
    min_driver: str | None
    driver_mode: str | None  # "native" | "minor-version compatibility" | "forward compatibility"
    gpus: tuple[GpuFit, ...]
    requests: tuple[PlatformRequest, ...]
    decisions: tuple[Decision, ...]
    warnings: tuple[str, ...] = ()
    matrix_version: str = ""

    def request_for(self, platform: str) -> PlatformRequest:
        """The lock request of one platform; KeyError when the solution does not cover it."""
        for request in self.requests:
            if request.platform == platform:
                return request
        raise KeyError(platform)

    def to_dict(self) -> dict[str, Any]:
        """A stable, JSON-ready form (schema ``envctl.solution/1``)."""
        data = asdict(self)
        data["schema"] = SOLUTION_SCHEMA
        return data
