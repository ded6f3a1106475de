"""Read compat_matrix/ into a ``Matrix``, validating every row (file, key path, expectation)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path

from packaging.version import Version

from envctl.adapters.files import read_toml, write_atomic
from envctl.core.matrix import (
    PYPI,
    Blas,
    Build,
    ComputeCapability,
    CudaMajor,
    CudaToolkit,
    CudnnSeries,
    Framework,
    Gpu,
    Index,
    Matrix,
)
from envctl.core.schema import Table
from envctl.errors import MatrixError

FRAMEWORK_FILES = ("torch", "tensorflow", "jax")
SUBJECT_FILES = ("sources", "cuda", "gpus", "compute_capability", "cudnn", "python", "blas")


def default_matrix_dir() -> Path:
    """$ENVCTL_MATRIX, else compat_matrix/ of the source tree, else the copy inside the package."""
    env = os.environ.get("ENVCTL_MATRIX")
    if env:
        return Path(env)
    package = Path(__file__).resolve().parents[1]
    for candidate in (package.parent / "compat_matrix", package / "compat_matrix"):
        if candidate.is_dir():
            return candidate
    raise MatrixError("no compat_matrix/ directory found", hint="set ENVCTL_MATRIX or pass --matrix DIR")


def matrix_hash(directory: Path) -> str:
    """sha256 over the names and bytes of the matrix files: the lock's matrix version."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.toml")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def load_matrix(directory: Path | None = None) -> Matrix:
    """Load and validate every matrix file (or a cached copy of exactly these bytes).

    Parsing and validating ~3,000 TOML rows costs ~50 ms; the validated Matrix is cached under
    $XDG_CACHE_HOME/envctl keyed by the sha256 of the files, so a CLI call pays a few ms.
    Raises MatrixError naming file and key.
    """
    directory = directory or default_matrix_dir()
    if not directory.is_dir():
        raise MatrixError(f"{directory}: not a directory", hint="pass the compat_matrix/ folder")
    digest = matrix_hash(directory)
    cache = _cache_path(digest)
    try:
        with open(cache, "rb") as fh:
            cached = pickle.load(fh)
        if isinstance(cached, Matrix) and cached.version == digest:
            return cached
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError):
        pass  # no cache, or one from another envctl version: rebuild it
    matrix = _load_matrix(directory, digest)
    with contextlib.suppress(OSError):
        write_atomic(cache, pickle.dumps(matrix, protocol=pickle.HIGHEST_PROTOCOL))
    return matrix


def _cache_path(digest: str) -> Path:
    from envctl import __version__

    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "envctl"
    return root / f"matrix-{__version__}-{digest[:32]}.pickle"


def _load_matrix(directory: Path, digest: str) -> Matrix:
    docs = {}
    for name in SUBJECT_FILES + FRAMEWORK_FILES:
        path = directory / f"{name}.toml"
        docs[name] = Table(read_toml(path, "matrix file", MatrixError), path, error=MatrixError)

    src = docs["sources"].table("sources")
    sources = {key: Table(v, src.path, f"sources.{key}", MatrixError) for key, v in src.items()}
    titles = {}
    for key, t in sources.items():
        titles[key] = t.str("title")
        t.str("url", None)
        t.str("note", None)
        t.done()
    docs["sources"].done()

    def source(t: Table) -> str:
        value: str = t.str("source")
        for part in value.split(";"):
            key = part.strip().split(":", 1)[0].strip()
            if key not in titles:
                raise t.fail("source", f"unknown source key {key!r}", hint="add it to sources.toml")
        t.bool("inferred", False)
        return value

    cuda = docs["cuda"]
    toolkits = []
    for t in cuda.tables("toolkit"):
        toolkits.append(CudaToolkit(t.version("version"), t.version("min_driver"), source(t)))
        t.strs("min_driver_updates", ())
        t.done()
    majors = []
    for t in cuda.tables("major"):
        majors.append(
            CudaMajor(
                t.int("major"),
                t.version("min_driver"),
                t.version("driver_branch_below", None),
                t.choice("forward_compat", ("datacenter", "none")),
                source(t),
            )
        )
        t.done()
    cuda.done()

    gpus = []
    for t in docs["gpus"].tables("gpu"):
        gpus.append(
            Gpu(t.str("name"), t.strs("aliases", ()), t.version("cc"), t.bool("datacenter"), source(t))
        )
        t.str("family", None)
        t.str("memory", None)
        t.done()
    docs["gpus"].done()

    ccs = []
    for t in docs["compute_capability"].tables("cc"):
        ccs.append(
            ComputeCapability(
                t.version("cc"),
                t.str("family"),
                t.version("first_cuda"),
                t.version("last_cuda", None),
                source(t),
            )
        )
        t.str("gpus", None)
        t.done()
    docs["compute_capability"].done()

    cudnn = []
    for t in docs["cudnn"].tables("cudnn"):
        cudnn.append(
            CudnnSeries(
                t.version("series"),
                t.versions("versions"),
                tuple(t.parse_spec("cuda", s) for s in t.strs("cuda")),
                source(t),
            )
        )
        t.str("cc", None)
        t.str("note", None)
        t.done()
    docs["cudnn"].done()

    py = docs["python"]
    python_versions = py.versions("versions")
    source(py)
    py.done()

    blas = []
    for t in docs["blas"].tables("blas"):
        blas.append(
            Blas(
                t.str("name"),
                t.strs("platforms"),
                t.version("glibc", None),
                t.strs("slow_on", ()),
                source(t),
            )
        )
        t.str("package", None)
        t.str("note", None)
        t.done()
    docs["blas"].done()

    frameworks = tuple(_framework(docs[name], source) for name in FRAMEWORK_FILES)
    matrix = Matrix(
        toolkits=tuple(sorted(toolkits, key=lambda t: t.version)),
        majors=tuple(majors),
        gpus=tuple(gpus),
        ccs=tuple(sorted(ccs, key=lambda c: c.cc)),
        cudnn=tuple(cudnn),
        python_versions=tuple(sorted(python_versions)),
        blas=tuple(blas),
        frameworks=frameworks,
        sources=titles,
        version=digest,
    )
    _cross_check(matrix, directory)
    return matrix


def _framework(doc: Table, source: Callable[[Table], str]) -> Framework:
    name = doc.str("framework")
    package = doc.str("package")
    indexes = {"pypi": PYPI}
    idx_table = doc.table("indexes", None)
    if idx_table is not None:
        for key, value in idx_table.items():
            t = Table(value, doc.path, f"indexes.{key}", MatrixError)
            indexes[key] = Index(key, t.str("url"), t.str("local_label", None))
            t.done()
    doc.str("source", None)
    builds = []
    for t in doc.tables("build"):
        index_name = t.str("index")
        if index_name not in indexes:
            raise t.fail("index", f"unknown index {index_name!r}", hint="define it under [indexes]")
        variant = t.str("variant")
        cuda = t.spec("cuda", None)
        if (variant == "cpu") != (cuda is None):
            raise t.fail("cuda", "a cpu build has no cuda; every other build needs one")
        build = Build(
            framework=name,
            package=t.str("package", package),
            versions=t.versions("versions"),
            variant=variant,
            index=indexes[index_name],
            platforms=t.strs("platforms"),
            python=t.spec("python"),
            glibc=t.version("glibc", None),
            cuda=cuda,
            cuda_libs=t.choice(
                "cuda_libs", ("pip", "system", "bundled", "none"), "none" if cuda is None else "pip"
            ),
            cudnn=t.spec("cudnn", None),
            nccl=t.spec("nccl", None),
            cublas=t.spec("cublas", None),
            archs=t.versions("archs", ()),
            ptx=t.versions("ptx", ()),
            min_cc=t.version("min_cc", None),
            extras=t.strs("extras", ()),
            blas=t.str("blas", None),
            source=source(t),
            inferred=t.bool("inferred", False),
        )
        for p in build.platforms:
            if p not in ("linux-64", "linux-aarch64"):
                raise t.fail("platforms", f"unknown platform {p!r}", hint="use linux-64 or linux-aarch64")
        t.str("note", None)
        t.version("tag_glibc", None)  # what the manylinux tag claims; only refresh compares it
        t.done()
        builds.append(build)
    doc.done()
    if not builds:
        raise doc.fail("build", "no [[build]] rows")
    return Framework(name, package, tuple(builds))


def _cross_check(m: Matrix, directory: Path) -> None:
    """Facts that span files: references must resolve, or the solver would silently mis-answer."""
    known_ccs = {c.cc for c in m.ccs}
    for gpu in m.gpus:
        if gpu.cc not in known_ccs:
            raise MatrixError(
                f"{directory / 'gpus.toml'}: gpu {gpu.name!r}: cc {gpu.cc} is not in compute_capability.toml"
            )
    for t in m.toolkits:
        if m.major(t.version.major) is None:
            raise MatrixError(
                f"{directory / 'cuda.toml'}: toolkit {t.version}: no [[major]] row for {t.version.major}"
            )
    for fw in m.frameworks:
        for b in fw.builds:
            if (
                b.cudnn is not None
                and b.cuda_libs == "pip"
                and not any(v in b.cudnn for v, _ in m.cudnn_versions())
            ):
                raise MatrixError(
                    f"{directory / (fw.name + '.toml')}: build {b.variant} {b.versions[0]}: "
                    f"cudnn {b.cudnn} matches no cuDNN release in cudnn.toml"
                )


def parse_driver(text: str) -> Version:
    """Parse an NVIDIA driver version ("550.54.15") for messages and CLI flags."""
    return Version(text)
