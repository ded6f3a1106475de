"""The schema of compat_matrix/: each file's keys and types, turned into the ``Matrix`` values.

Pure: ``parse_matrix`` takes the parsed TOML documents (``envctl.adapters.matrix_files`` reads
them) and either returns a Matrix that passes every rule of ``matrix_rules`` or raises MatrixError
naming the file, the key path and what was expected. The README of compat_matrix/ documents it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from packaging.version import Version

from envctl.core.matrix import (
    PYPI,
    Blas,
    Build,
    ComputeCapability,
    CudaMajor,
    CudaToolkit,
    CudaUpdate,
    CudnnSeries,
    Framework,
    Gpu,
    Index,
    Matrix,
)
from envctl.core.matrix_rules import inconsistencies
from envctl.core.names import decimal
from envctl.core.schema import Table
from envctl.core.shown import shown
from envctl.errors import MatrixError

FRAMEWORK_FILES = ("torch", "tensorflow", "jax")
SUBJECT_FILES = ("sources", "cuda", "gpus", "compute_capability", "cudnn", "python", "blas")
MATRIX_FILES = SUBJECT_FILES + FRAMEWORK_FILES
PLATFORMS = ("linux-64", "linux-aarch64")

Row = TypeVar("Row")
Source = Callable[[Table], str]


def parse_matrix(files: Mapping[str, tuple[Any, str]], version: str) -> Matrix:
    """Build the Matrix from every matrix file's TOML document, checking its schema and rules.

    ``files`` maps a file's stem (``"cuda"``) to its document and the path errors name;
    ``version`` is the content hash the Matrix carries. Raises MatrixError naming file, key path
    and what was expected.
    """
    missing = [name for name in MATRIX_FILES if name not in files]
    if missing:
        raise MatrixError(f"matrix file {missing[0]}.toml not given", hint="pass every matrix file")
    docs = {name: Table(data, path, error=MatrixError) for name, (data, path) in files.items()}
    rows = _Rows()

    src = docs["sources"].table("sources")
    titles = {}
    for key, value in src.items():
        t = Table(value, src.path, f"sources.{key}", MatrixError)
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
                raise t.fail("source", f"unknown source key {shown(key)}", hint="add it to sources.toml")
        t.bool("inferred", False)
        return value

    cuda = docs["cuda"]
    toolkits = rows.read(cuda, "toolkit", lambda t: _toolkit(t, source))
    majors = rows.read(cuda, "major", lambda t: _major(t, source))
    updates = rows.read(cuda, "update", lambda t: _update(t, source))
    gpus = rows.read(docs["gpus"], "gpu", lambda t: _gpu(t, source))
    ccs = rows.read(docs["compute_capability"], "cc", lambda t: _cc(t, source))
    cudnn = rows.read(docs["cudnn"], "cudnn", lambda t: _cudnn(t, source))
    blas = rows.read(docs["blas"], "blas", lambda t: _blas(t, source))
    py = docs["python"]
    python_versions = py.versions("versions")
    source(py)
    for name in SUBJECT_FILES:
        docs[name].done()

    matrix = Matrix(
        toolkits=tuple(sorted(toolkits, key=lambda t: t.version)),
        majors=tuple(majors),
        gpus=tuple(gpus),
        ccs=tuple(sorted(ccs, key=lambda c: c.cc)),
        cudnn=tuple(cudnn),
        python_versions=tuple(sorted(python_versions)),
        blas=tuple(blas),
        frameworks=tuple(_framework(docs[name], source, rows) for name in FRAMEWORK_FILES),
        sources=titles,
        version=version,
        updates=tuple(sorted(updates, key=lambda u: u.version)),
    )
    for problem in inconsistencies(matrix):
        table = rows.table(problem.row)
        if table is None:  # every rule names a row it read; this guards a rule added without one
            raise MatrixError(f"{docs[problem.file].path}: {problem.what}", hint=problem.hint)
        raise table.fail(problem.key, problem.what, hint=problem.hint)
    return matrix


class _Rows:
    """Remembers the table each model row came from, so a broken rule names its key path."""

    def __init__(self) -> None:
        self._tables: dict[int, Table] = {}

    def read(self, doc: Table, key: str, make: Callable[[Table], Row]) -> list[Row]:
        """Every ``[[key]]`` table of ``doc``, made into a row; unknown keys are errors."""
        out = []
        for t in doc.tables(key):
            out.append(self.add(make(t), t))
            t.done()
        return out

    def add(self, row: Row, t: Table) -> Row:
        self._tables[id(row)] = t  # rows stay alive inside the Matrix, so ids stay unique
        return row

    def table(self, row: object) -> Table | None:
        return self._tables.get(id(row))


def _toolkit(t: Table, source: Source) -> CudaToolkit:
    row = CudaToolkit(t.version("version"), t.version("min_driver"), source(t))
    t.strs("min_driver_updates", ())
    return row


def _update(t: Table, source: Source) -> CudaUpdate:
    version = t.version("version")
    if len(version.release) != 3:
        raise t.fail("version", f"expected a toolkit release like 12.8.1, got {shown(str(version))}")
    row = CudaUpdate(version, t.version("min_driver"), t.version("cudart", None), source(t))
    t.str("note", None)
    return row


def _major(t: Table, source: Source) -> CudaMajor:
    return CudaMajor(
        t.int("major"),
        t.version("min_driver"),
        t.version("driver_branch_below", None),
        t.choice("forward_compat", ("datacenter", "none")),
        source(t),
    )


def _gpu(t: Table, source: Source) -> Gpu:
    row = Gpu(
        t.str("name"),
        t.strs("aliases", ()),
        t.version("cc"),
        t.bool("datacenter"),
        source(t),
        t.version("min_driver", None),
    )
    t.str("family", None)
    t.str("memory", None)
    return row


def _cc(t: Table, source: Source) -> ComputeCapability:
    row = ComputeCapability(
        t.version("cc"),
        t.str("family"),
        t.version("first_cuda"),
        t.version("last_cuda", None),
        source(t),
        _branch(t),
    )
    t.str("gpus", None)
    return row


def _cudnn(t: Table, source: Source) -> CudnnSeries:
    row = CudnnSeries(
        t.version("series"),
        t.versions("versions"),
        tuple(t.parse_spec("cuda", s) for s in t.strs("cuda")),
        source(t),
        t.version("min_cc"),
        t.version("max_cc"),
    )
    t.str("note", None)
    return row


def _branch(t: Table) -> int | None:
    """``last_driver_branch = "470"``: a driver branch is its major number."""
    text = t.str("last_driver_branch", None)
    if text is None:
        return None
    branch = decimal(text.strip(), 6)  # str.isdigit() is true for "²", which int() refuses
    if branch is None:
        raise t.fail("last_driver_branch", f'expected a driver branch like "470", got {shown(text)}')
    return branch


def _blas(t: Table, source: Source) -> Blas:
    row = Blas(
        t.str("name"),
        t.strs("platforms"),
        t.version("glibc", None),
        t.strs("slow_on", ()),
        source(t),
    )
    t.str("package", None)
    t.str("note", None)
    return row


def _framework(doc: Table, source: Source, rows: _Rows) -> Framework:
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
    builds = rows.read(doc, "build", lambda t: _build(t, name, package, indexes, source))
    doc.done()
    if not builds:
        raise doc.fail("build", "no [[build]] rows")
    return Framework(name, package, tuple(builds))


def _build(t: Table, framework: str, package: str, indexes: dict[str, Index], source: Source) -> Build:
    index_name = t.str("index")
    if index_name not in indexes:
        raise t.fail("index", f"unknown index {shown(index_name)}", hint="define it under [indexes]")
    variant = t.str("variant")
    cuda = t.spec("cuda", None)
    if (variant == "cpu") != (cuda is None):
        raise t.fail("cuda", "a cpu build has no cuda; every other build needs one")
    platforms = t.strs("platforms")
    for p in platforms:
        if p not in PLATFORMS:
            raise t.fail("platforms", f"unknown platform {shown(p)}", hint="use linux-64 or linux-aarch64")
    build = Build(
        framework=framework,
        package=t.str("package", package),
        versions=t.versions("versions"),
        variant=variant,
        index=indexes[index_name],
        platforms=platforms,
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
        cuda_update=_cuda_update(t),
    )
    t.str("note", None)
    t.version("tag_glibc", None)  # what the manylinux tag claims; only refresh compares it
    return build


def _cuda_update(t: Table) -> Version | None:
    value = t.version("cuda_update", None)
    if value is not None and len(value.release) != 3:
        raise t.fail("cuda_update", f"expected a toolkit release like 12.8.1, got {shown(str(value))}")
    return value  # type: ignore[no-any-return]
