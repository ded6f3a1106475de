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
class CudaUpdate:
    """One release of a toolkit (12.8.1 = 12.8 Update 1): wheels carry an update, not a minor."""

    version: Version  # major.minor.patch, as NVIDIA numbers the release
    min_driver: Version  # Linux driver that runs it natively
    cudart: Version | None  # the nvidia-cuda-runtime wheel version of that release, where known
    source: str
    toolkit: Version = field(init=False, compare=False)  # major.minor, kept: the solver asks often

    def __post_init__(self) -> None:
        object.__setattr__(self, "toolkit", major_minor(self.version))


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
    min_driver: Version | None = None  # the first driver that supports this product


@dataclass(frozen=True)
class ComputeCapability:
    cc: Version
    family: str
    first_cuda: Version
    last_cuda: Version | None
    source: str
    last_driver_branch: int | None = None  # newest driver branch (R470 = 470) that drives it


@dataclass(frozen=True)
class CudnnSeries:
    series: Version
    versions: tuple[Version, ...]
    cuda: tuple[SpecifierSet, ...]
    source: str
    min_cc: Version  # the support matrix's lowest and highest compute capability
    max_cc: Version

    def supports_cuda(self, cuda: Version) -> bool:
        return any(cuda in spec for spec in self.cuda)

    def supports_gpu(self, cc: Version) -> bool:
        """Whether this series ships kernels for a GPU of compute capability ``cc``.

        Below ``min_cc`` there are none (cuDNN 9.11 dropped CC < 7.5). Above ``max_cc`` a GPU of the
        same major still runs the newest kernels (SASS of 12.0 runs on 12.1); a newer major does not.
        """
        if cc < self.min_cc:
            return False
        return cc <= self.max_cc or cc.major == self.max_cc.major

    def cc_range(self) -> str:
        return f"CC {self.min_cc}-{self.max_cc}"


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
    cuda_update: Version | None = None  # the toolkit release the wheels carry (12.8.1), if known

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
    updates: tuple[CudaUpdate, ...] = ()  # toolkit update releases, ascending

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

    def update(self, version: Version) -> CudaUpdate | None:
        for u in self.updates:
            if u.version == version:
                return u
        return None

    def native_floor(self, toolkit: CudaToolkit, build: Build | None = None) -> Version:
        """The least driver that runs ``build``'s CUDA libraries of ``toolkit`` natively.

        A build that names its update (torch cu128 wheels of 2.8+ carry 12.8.1) needs that
        update's driver. A build that accepts a range (jax, TensorFlow >= 2.20) is held to the
        toolkit's minor and resolves to its newest update, whose driver it then needs. Otherwise
        (no update known) the GA floor of the toolkit.
        """
        if build is not None and build.cuda_update is not None:
            known = self.update(build.cuda_update)
            if known is not None:
                return known.min_driver
        if build is not None and build.cuda is not None and not _exact(build.cuda):
            newest = self.newest_update(toolkit.version)
            if newest is not None:
                return newest.min_driver
        return toolkit.min_driver

    def newest_update(self, toolkit: Version) -> CudaUpdate | None:
        """The last release of a toolkit minor (12.8 -> 12.8.1), which a ranged build resolves to."""
        return self._newest_updates.get(toolkit)

    @cached_property
    def _newest_updates(self) -> dict[Version, CudaUpdate]:
        newest: dict[Version, CudaUpdate] = {}
        for u in self.updates:  # ascending
            newest[u.toolkit] = u
        return newest

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

    def cudnn_versions(self) -> tuple[tuple[Version, CudnnSeries], ...]:
        """Every cuDNN release with its series, ascending."""
        return self._cudnn_sorted

    @cached_property
    def _cudnn_sorted(self) -> tuple[tuple[Version, CudnnSeries], ...]:
        return tuple(sorted(((v, s) for s in self.cudnn for v in s.versions), key=lambda p: p[0]))

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


def _exact(spec: SpecifierSet) -> bool:
    return bool(spec) and all(s.operator == "==" for s in spec)


def _norm(name: str) -> str:
    return "".join(name.lower().split()).replace("_", "-")
