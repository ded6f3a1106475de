"""``envctl matrix refresh``: re-derive the PyPI-readable columns of the framework files.

For every committed ``[[build]]`` row that comes from PyPI, each version and platform it lists is
looked up on the index (``index_reader`` derives the columns) and compared with the row, as is
whether a wheel exists at all. Releases on the index that no row lists are reported too. Rows
from other indexes are counted as skipped. The result is a diff; nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from envctl.adapters.files import read_toml
from envctl.core.matrix_diff import DiffEntry, row_label
from envctl.core.shown import shown
from envctl.errors import MatrixError
from envctl.services.solve.index_reader import (
    MACHINES,
    PIN_FIELDS,
    Derived,
    IndexReader,
    Lookup,
    WheelIndex,
    derive,
    derive_all,
)
from envctl.services.solve.refresh_archs import arch_diffs

FRAMEWORKS = ("torch", "tensorflow", "jax")


@dataclass(frozen=True)
class RefreshReport:
    """What ``refresh`` found: the diff, and how many rows it could and could not check."""

    frameworks: tuple[str, ...]
    diffs: tuple[DiffEntry, ...]
    checked_rows: int
    skipped_rows: int  # rows on other indexes (not readable from PyPI)

    @property
    def clean(self) -> bool:
        """True when the committed rows agree with the index."""
        return not self.diffs

    def to_json(self) -> dict[str, Any]:
        """Stable JSON shape for ``--json``."""
        return {
            "schema": "envctl.matrix-refresh/1",
            "frameworks": list(self.frameworks),
            "checked_rows": self.checked_rows,
            "skipped_rows": self.skipped_rows,
            "clean": self.clean,
            "diffs": [
                {
                    "file": d.file,
                    "row": d.row,
                    "label": d.label,
                    "field": d.field,
                    "platform": d.platform,
                    "versions": list(d.versions),
                    "committed": d.committed,
                    "pypi": d.pypi,
                }
                for d in self.diffs
            ],
        }


def refresh(
    matrix_dir: Path, framework: str | None = None, fetch: WheelIndex | None = None, archs: bool = False
) -> RefreshReport:
    """Compare the committed framework rows in ``matrix_dir`` with what the index publishes.

    ``archs`` also reads the compiled GPU archs out of torch and TensorFlow wheels (slower).
    """
    if framework is not None and framework not in FRAMEWORKS:
        raise MatrixError(
            f"unknown framework {shown(framework)}", hint=f"choose one of {', '.join(FRAMEWORKS)}"
        )
    if fetch is None:
        from envctl.adapters.pypi import PyPIClient

        fetch = PyPIClient()
    reader = IndexReader(fetch)
    releases = _cudart_releases(matrix_dir)
    names = (framework,) if framework else FRAMEWORKS
    diffs: list[DiffEntry] = []
    checked = skipped = 0
    for name in names:
        path = matrix_dir / f"{name}.toml"
        data = read_toml(path, "matrix file", MatrixError)
        package = str(data.get("package"))
        rows = _builds(data, path)
        pypi_rows = [(i, r) for i, r in enumerate(rows) if r.get("index", "pypi") == "pypi"]
        skipped += len(rows) - len(pypi_rows)
        checked += len(pypi_rows)
        derived = derive_all(reader, [_tasks(path, i, r, package) for i, r in pypi_rows])
        for index, row in pypi_rows:
            diffs.extend(_check_row(derived, path.name, index, row, package, releases))
        diffs.extend(_unlisted(reader, path.name, package, rows))
        if archs:
            diffs.extend(arch_diffs(reader, name, path.name, pypi_rows, package))
    return RefreshReport(tuple(names), tuple(diffs), checked, skipped)


def _tasks(path: Path, index: int, row: dict[str, Any], package: str) -> list[Lookup]:
    """The (project, release, platform, extras) lookups one row needs; bad rows are bad input."""
    where = f"{path}: build[{index}]"
    versions, platforms = row.get("versions"), row.get("platforms")
    if not isinstance(versions, list) or not isinstance(platforms, list):
        raise MatrixError(f"{where}: `versions` and `platforms` must be lists", hint="see README.md")
    unknown = [p for p in platforms if p not in MACHINES]
    if unknown:
        raise MatrixError(
            f"{where}.platforms: unknown platform {shown(unknown[0])}", hint="linux-64 or linux-aarch64"
        )
    try:
        releases = [Version(str(v)) for v in versions]
    except InvalidVersion as exc:
        raise MatrixError(f"{where}.versions: {exc}", hint="use PEP 440 versions") from exc
    project = str(row.get("package", package))
    extras = tuple(str(e) for e in row.get("extras", []))
    return [(project, v, str(p), extras) for p in platforms for v in releases]


def _same(committed: str | None, derived: str | None) -> bool:
    if committed is None or derived is None:
        return committed == derived
    try:
        return SpecifierSet(committed) == SpecifierSet(derived)
    except InvalidSpecifier:
        return committed == derived


def _builds(data: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    rows = data.get("build")
    if not isinstance(rows, list) or not isinstance(data.get("package"), str):
        raise MatrixError(f"{path}: expected `package` and [[build]] rows", hint="see README.md")
    return [r for r in rows if isinstance(r, dict)]


def _cudart_releases(matrix_dir: Path) -> dict[str, set[str]] | None:
    """cudart version -> the toolkit releases that ship it, from cuda.toml's [[update]] rows
    (12.6.77 is both 12.6.2's and 12.6.3's); None when the directory has no cuda.toml."""
    path = matrix_dir / "cuda.toml"
    if not path.is_file():
        return None
    out: dict[str, set[str]] = {}
    for row in read_toml(path, "matrix file", MatrixError).get("update", []):
        if isinstance(row, dict) and isinstance(row.get("cudart"), str):
            out.setdefault(row["cudart"], set()).add(str(row.get("version")))
    return out


def _update_of(runtime: str | None, releases: dict[str, set[str]]) -> set[str] | None:
    """The releases a wheel's exact runtime pin names; None when it names none that is known."""
    if runtime is None:
        return None
    kind, _, version = runtime.partition(":")
    if kind == "toolkit":
        return {version} if len(version.split(".")) == 3 else None
    return releases.get(version)


def _check_row(
    derived_by_task: dict[Lookup, Derived | None],
    file: str,
    index: int,
    row: dict[str, Any],
    default_package: str,
    releases: dict[str, set[str]] | None = None,
) -> Iterable[DiffEntry]:
    project = str(row.get("package", default_package))
    extras = tuple(str(e) for e in row.get("extras", []))
    pin_fields = row.get("cuda_libs") == "pip" or row.get("variant") == "cpu"
    found: dict[tuple[str, str, str | None, str | None], list[str]] = {}
    for platform in row.get("platforms", []):
        for text in row.get("versions", []):
            derived = derived_by_task[(project, Version(str(text)), str(platform), extras)]
            if derived is None:
                found.setdefault((platform, "platforms", platform, None), []).append(str(text))
                continue
            pairs = [
                ("python", row.get("python"), derived.python),
                ("glibc", row.get("tag_glibc", row.get("glibc")), derived.glibc),
            ]
            if pin_fields:
                pairs += [(f, row.get(f), derived.pins.get(f)) for f in PIN_FIELDS]
            if pin_fields and releases is not None and row.get("variant") != "cpu":
                named = _update_of(derived.runtime, releases)
                committed_update = row.get("cuda_update")
                if named is not None and committed_update not in named:
                    pairs.append(("cuda_update", committed_update, " or ".join(sorted(named))))
                elif named is None and committed_update is not None and derived.runtime is None:
                    pairs.append(("cuda_update", committed_update, None))  # a range resolves to any
            for field, committed, pypi in pairs:
                if field == "cuda_update":
                    same = False  # only differences were added above
                    key = (platform, field, _text(committed), pypi)
                    found.setdefault(key, []).append(str(text))
                    continue
                same = committed == pypi if field == "glibc" else _same(committed, pypi)
                if not same:
                    key = (platform, field, _text(committed), pypi)
                    found.setdefault(key, []).append(str(text))
    for (platform, field, committed, pypi), versions in found.items():
        yield DiffEntry(file, index, row_label(row), field, committed, pypi, tuple(versions), platform)


def _unlisted(
    reader: IndexReader, file: str, package: str, rows: list[dict[str, Any]]
) -> Iterable[DiffEntry]:
    listed: dict[str, set[str]] = {}
    for row in rows:
        if row.get("index", "pypi") == "pypi" and row.get("package", package) == package:
            for platform in row.get("platforms", []):
                listed.setdefault(str(platform), set()).update(str(v) for v in row["versions"])
    every = {v for vs in listed.values() for v in vs}
    if not every:
        return
    oldest = min(Version(v) for v in every)
    for version, plats in sorted(reader.releases(package).items()):
        if version < oldest:
            continue
        platforms = sorted(listed) if set(plats) == {"any"} else sorted(set(plats) & set(MACHINES))
        missing = [p for p in platforms if str(version) not in listed.get(p, set())]
        for platform in missing:
            if derive(reader, package, version, platform, ()) is None:
                continue  # published but not installable (e.g. tensorflow 2.11.1 on aarch64)
            field = "versions" if str(version) not in every else "platforms"
            yield DiffEntry(file, None, "(no row)", field, None, str(version), (str(version),), platform)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
