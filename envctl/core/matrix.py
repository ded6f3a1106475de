"""The compatibility matrix as values: facts about CUDA, GPUs, cuDNN, BLAS and framework builds.

Built by ``envctl.adapters.matrix_files`` from compat_matrix/*.toml; the solver only reads it. Every fact keeps
its ``source`` so explanations can cite it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from packaging.specifiers import SpecifierSet
from packaging.version import Version


class Dotted(Version):
    """A version that prints as it was written: NVIDIA drivers keep their zeros (520.61.05)."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._text = text

    def __str__(self) -> str:
        return self._text

    def __reduce__(self) -> tuple[type[Dotted], tuple[str]]:
        return (Dotted, (self._text,))


class Spec(SpecifierSet):
    """A specifier set that remembers its answers. The matrix's ranges (and a profile's) are asked
    about the same few versions thousands of times per explanation, and packaging's ``contains``
    was the solver's hottest function. Immutable like its base, so the memo cannot go stale."""

    __slots__ = ("_answers",)

    def __init__(self, specifiers: str = "", prereleases: bool | None = None) -> None:
        super().__init__(specifiers, prereleases)
        self._answers: dict[tuple[object, bool | None, bool | None], bool] = {}

    def contains(
        self, item: str | Version, prereleases: bool | None = None, installed: bool | None = None
    ) -> bool:
        key = (item, prereleases, installed)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = super().contains(item, prereleases, installed)
        return answer

    def __reduce__(self) -> tuple[type[Spec], tuple[str, bool | None]]:
        return (Spec, (str(self), self.prereleases))


def cc_label(cc: Version, ptx: bool = False) -> str:
    """``9.0`` -> ``sm_90`` (or ``compute_90`` for PTX)."""
    return f"{'compute' if ptx else 'sm'}_{cc.major}{cc.minor}"


def major_minor(v: Version) -> Version:
    """12.4.127 -> 12.4"""
    return Version(f"{v.major}.{v.minor}")


@dataclass(frozen=True)
class CudaToolkit:
    version: Version  # major.minor
    min_driver: Version  # native support (GA release)
    source: str


@dataclass(frozen=True)
class CudaMajor:
    major: int
    min_driver: Version  # floor of minor-version compatibility
    driver_branch_below: Version | None
    forward_compat: str  # "datacenter" | "none"
    source: str


@dataclass(frozen=True)
class Gpu:
    name: str
    aliases: tuple[str, ...]
    cc: Version
    datacenter: bool
    source: str


@dataclass(frozen=True)
class ComputeCapability:
    cc: Version
    family: str
    first_cuda: Version
    last_cuda: Version | None
    source: str


@dataclass(frozen=True)
class CudnnSeries:
    series: Version
    versions: tuple[Version, ...]
    cuda: tuple[SpecifierSet, ...]
    source: str

    def supports_cuda(self, cuda: Version) -> bool:
        return any(cuda in spec for spec in self.cuda)


@dataclass(frozen=True)
class Blas:
    name: str
    platforms: tuple[str, ...]
    glibc: Version | None
    slow_on: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class Index:
    name: str
    url: str
    local_label: str | None


PYPI = Index("pypi", "https://pypi.org/simple", None)


@dataclass(frozen=True)
class Build:
    """One framework build: a set of releases, a variant (cuXYZ or cpu), an index, platforms."""

    framework: str
    package: str
    versions: tuple[Version, ...]
    variant: str
    index: Index
    platforms: tuple[str, ...]
    python: SpecifierSet
    glibc: Version | None
    cuda: SpecifierSet | None  # None for CPU builds
    cuda_libs: str  # "pip" | "system" | "none"
    cudnn: SpecifierSet | None
    nccl: SpecifierSet | None
    cublas: SpecifierSet | None
    archs: tuple[Version, ...]
    ptx: tuple[Version, ...]
    min_cc: Version | None
    extras: tuple[str, ...]
    blas: str | None
    source: str
    inferred: bool = False

    @property
    def is_cuda(self) -> bool:
        return self.cuda is not None

    def label(self) -> str:
        where = "PyPI" if self.index is PYPI or self.index.name == "pypi" else self.index.name
        return f"{self.framework} {self.variant} ({where})"

    def requirement(self, version: Version) -> str:
        """The PEP 508 line that selects exactly this build of ``version``."""
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        local = f"+{self.index.local_label}" if self.index.local_label else ""
        return f"{self.package}{extras}=={version}{local}"

    def runs_on(self, cc: Version) -> str | None:
        """How a GPU of compute capability ``cc`` runs this build, or None if it cannot.

        SASS runs on GPUs of the same major and an equal or higher minor; PTX is JIT-compiled
        for any newer GPU. ``min_cc`` stands for a documented floor when no arch list is known.
        """
        sass = [a for a in self.archs if a.major == cc.major and a.minor <= cc.minor]
        if sass:
            return f"{cc_label(max(sass))} code"
        ptx = [p for p in self.ptx if p <= cc]
        if ptx:
            return f"PTX JIT from {cc_label(max(ptx), ptx=True)}"
        if self.min_cc is not None and not self.archs and cc >= self.min_cc:
            return f"supported from CC {self.min_cc} (framework documentation)"
        return None

    def needs_jit(self, cc: Version) -> bool:
        return (self.runs_on(cc) or "").startswith("PTX JIT")


@dataclass(frozen=True)
class Framework:
    name: str
    package: str
    builds: tuple[Build, ...]
    source: str = ""

    def versions(self) -> list[Version]:
        """Every release the matrix knows, newest first."""
        return list(self._releases)

    def builds_of(self, version: Version) -> tuple[Build, ...]:
        """The builds that list ``version``, in file order."""
        return self._by_release.get(version, ())

    # Indexes built once per framework: the solver and its explanations ask these thousands of
    # times per profile, and a linear scan comparing Versions dominated the search.
    @cached_property
    def _releases(self) -> tuple[Version, ...]:
        return tuple(sorted({v for b in self.builds for v in b.versions}, reverse=True))

    @cached_property
    def _by_release(self) -> dict[Version, tuple[Build, ...]]:
        index: dict[Version, list[Build]] = {}
        for b in self.builds:
            for v in b.versions:
                index.setdefault(v, []).append(b)
        return {v: tuple(bs) for v, bs in index.items()}


@dataclass(frozen=True)
class Matrix:
    toolkits: tuple[CudaToolkit, ...]
    majors: tuple[CudaMajor, ...]
    gpus: tuple[Gpu, ...]
    ccs: tuple[ComputeCapability, ...]
    cudnn: tuple[CudnnSeries, ...]
    python_versions: tuple[Version, ...]
    blas: tuple[Blas, ...]
    frameworks: tuple[Framework, ...]
    sources: dict[str, str] = field(default_factory=dict)  # key -> title
    version: str = ""  # content hash of the files, for lock metadata

    # Lookups are linear scans over a few hundred rows: well under the solver's budget.
    def framework(self, name: str) -> Framework | None:
        for fw in self.frameworks:
            if fw.name == name or fw.package == name:
                return fw
        return None

    def toolkit(self, version: Version) -> CudaToolkit | None:
        for t in self.toolkits:
            if t.version == version:
                return t
        return None

    def major(self, major: int) -> CudaMajor | None:
        for m in self.majors:
            if m.major == major:
                return m
        return None

    def cc_info(self, cc: Version) -> ComputeCapability | None:
        for c in self.ccs:
            if c.cc == cc:
                return c
        return None

    def find_gpu(self, name: str) -> Gpu | None:
        """Find a GPU by name or alias, case- and space-insensitively ("nvidia h100 80gb hbm3")."""
        key = _norm(name)
        for gpu in self.gpus:
            if _norm(gpu.name) == key or any(_norm(a) == key for a in gpu.aliases):
                return gpu
        return None

    def cudnn_versions(self) -> list[tuple[Version, CudnnSeries]]:
        return sorted(((v, s) for s in self.cudnn for v in s.versions), key=lambda p: p[0])

    def cudnn_series_of(self, version: Version) -> CudnnSeries | None:
        for s in self.cudnn:
            if (version.major, version.minor) == (s.series.major, s.series.minor):
                return s
        return None

    def blas_named(self, name: str) -> Blas | None:
        for b in self.blas:
            if b.name == name:
                return b
        return None


def _norm(name: str) -> str:
    return "".join(name.lower().split()).replace("_", "-")
