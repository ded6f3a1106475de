"""What a team asks for: frameworks with ranges, Python, packages, and the targets it must run on."""

from __future__ import annotations

from dataclasses import dataclass, field

from packaging.specifiers import SpecifierSet
from packaging.version import Version

#: CPU arch as users write it -> conda subdir
ARCHES = {"x86_64": "linux-64", "amd64": "linux-64", "aarch64": "linux-aarch64", "arm64": "linux-aarch64"}
#: requirement names (PEP 503) the solver picks builds of, -> their key under [frameworks]. Under
#: [packages] pip they would bypass the CUDA/driver solver (and come out CPU-only from PyPI).
FRAMEWORK_PACKAGES = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax", "jaxlib": "jax"}
#: fallback glibc floor when the profile names none (RHEL 8, Debian 10 and newer)
DEFAULT_GLIBC = Version("2.28")


def framework_of(name: str) -> str | None:
    """The [frameworks] key a requirement named ``name`` belongs under, None for other packages."""
    from packaging.utils import canonicalize_name

    return FRAMEWORK_PACKAGES.get(canonicalize_name(name))


@dataclass(frozen=True)
class FrameworkRequest:
    name: str  # matrix framework name: torch | tensorflow | jax
    spec: SpecifierSet
    extras: tuple[str, ...] = ()
    key: str = ""  # where it was written, e.g. "frameworks.torch"


@dataclass(frozen=True)
class Targets:
    platforms: tuple[str, ...] = ("linux-64",)
    gpus: tuple[str, ...] = ()  # names, aliases, "cc:9.0" or "sm_90"
    gpu_platforms: tuple[str, ...] | None = None  # None: every platform has the GPUs
    driver: Version | None = None
    cpu_vendor: str = "any"  # intel | amd | any
    glibc: Version | None = None
    forward_compat: bool = False  # allow the cuda-compat package on data-center GPUs

    def has_gpus_on(self, platform: str) -> bool:
        if not self.gpus:
            return False
        return self.gpu_platforms is None or platform in self.gpu_platforms


@dataclass(frozen=True)
class Profile:
    name: str
    python: SpecifierSet = field(default_factory=SpecifierSet)
    frameworks: tuple[FrameworkRequest, ...] = ()
    pip: tuple[str, ...] = ()
    conda: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    targets: Targets = field(default_factory=Targets)
    blas: str = "auto"  # auto | mkl | openblas
    base_image: str | None = None
    description: str = ""
    path: str = "<profile>"
