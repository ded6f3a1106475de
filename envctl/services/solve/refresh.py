"""``envctl matrix refresh``: re-derive the PyPI-readable columns of the framework files.

For every committed ``[[build]]`` row that comes from PyPI, each version and platform it lists is
looked up on the index: the Python range (CPython tags intersected with Requires-Python), the
glibc floor (manylinux tag), the CUDA / cuDNN / NCCL / cuBLAS pins (Requires-Dist with the row's
extras, following jaxlib and the JAX CUDA plugins one hop), and whether a wheel exists at all.
Releases on the index that no row lists are reported too. Rows from other indexes are counted as
skipped. The result is a diff; nothing is written.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from envctl.adapters.files import read_toml
from envctl.core.matrix_diff import DiffEntry, row_label
from envctl.core.wheel_facts import (
    IndexFile,
    LinuxWheel,
    Pin,
    active_pins,
    glibc_text,
    linux_wheel,
    parse_metadata,
    python_range,
)
from envctl.errors import MatrixError
from envctl.services.solve.refresh_archs import arch_diffs

FRAMEWORKS = ("torch", "tensorflow", "jax")
#: binary companions whose wheels decide Python, glibc and CUDA pins of a pure-Python framework
FOLLOW = frozenset(
    {
        "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "jax-cuda12-pjrt", "jax-cuda13-pjrt",
        "tensorflow-cpu-aws",  # what `tensorflow` <= 2.15 really installs on aarch64
    }
)  # fmt: skip
PIN_FIELDS = ("cuda", "cudnn", "nccl", "cublas")
_PIN_NAMES = {
    "cudnn": re.compile(r"^nvidia-cudnn(-cu\d+)?$"),
    "nccl": re.compile(r"^nvidia-nccl(-cu\d+)?$"),
    "cublas": re.compile(r"^nvidia-cublas(-cu\d+)?$"),
    "cuda": re.compile(r"^(nvidia-cuda-runtime(-cu\d+)?|cuda-toolkit)$"),
}
_MACHINE = {"linux-64": "x86_64", "linux-aarch64": "aarch64"}
_WORKERS = 8


class WheelIndex(Protocol):
    """What refresh needs from an index (adapters.pypi.PyPIClient, or recorded data in tests)."""

    def project_files(self, project: str) -> list[IndexFile]: ...

    def wheel_metadata(self, file: IndexFile) -> str: ...


@dataclass(frozen=True)
class Derived:
    """The PyPI-readable columns of one (release, platform, extras)."""

    python: str | None
    glibc: str | None
    pins: dict[str, str]  # field -> specifier text, for the fields in PIN_FIELDS


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
        raise MatrixError(f"unknown framework {framework!r}", hint=f"choose one of {', '.join(FRAMEWORKS)}")
    if fetch is None:
        from envctl.adapters.pypi import PyPIClient

        fetch = PyPIClient()
    reader = _Reader(fetch)
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
        derived = _derive_all(reader, [_tasks(path, i, r, package) for i, r in pypi_rows])
        for index, row in pypi_rows:
            diffs.extend(_check_row(derived, path.name, index, row, package))
        diffs.extend(_unlisted(reader, path.name, package, rows))
        if archs:
            diffs.extend(arch_diffs(reader, name, path.name, pypi_rows, package))
    return RefreshReport(tuple(names), tuple(diffs), checked, skipped)


_Task = tuple[str, Version, str, tuple[str, ...]]


def _tasks(path: Path, index: int, row: dict[str, Any], package: str) -> list[_Task]:
    """The (project, release, platform, extras) lookups one row needs; bad rows are bad input."""
    where = f"{path}: build[{index}]"
    versions, platforms = row.get("versions"), row.get("platforms")
    if not isinstance(versions, list) or not isinstance(platforms, list):
        raise MatrixError(f"{where}: `versions` and `platforms` must be lists", hint="see README.md")
    unknown = [p for p in platforms if p not in _MACHINE]
    if unknown:
        raise MatrixError(
            f"{where}.platforms: unknown platform {unknown[0]!r}", hint="linux-64 or linux-aarch64"
        )
    try:
        releases = [Version(str(v)) for v in versions]
    except InvalidVersion as exc:
        raise MatrixError(f"{where}.versions: {exc}", hint="use PEP 440 versions") from exc
    project = str(row.get("package", package))
    extras = tuple(str(e) for e in row.get("extras", []))
    return [(project, v, str(p), extras) for p in platforms for v in releases]


def _derive_all(reader: _Reader, task_lists: list[list[_Task]]) -> dict[_Task, Derived | None]:
    """Derive every (release, platform) at once; index reads overlap on a few threads."""
    tasks = list(dict.fromkeys(t for ts in task_lists for t in ts))
    for project in sorted({t[0] for t in tasks}):
        reader.releases(project)  # one page fetch per project, before the threads start
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        results = list(pool.map(lambda t: derive(reader, *t), tasks))
    return dict(zip(tasks, results, strict=True))


def derive(
    reader: _Reader, project: str, version: Version, platform: str, extras: tuple[str, ...]
) -> Derived | None:
    """Read one release's columns off the index; None when it has no wheel for ``platform``."""
    facts = reader.facts(project, version, platform, extras, depth=0)
    if facts is None:
        return None
    minors, glibc, pins = facts
    fields: dict[str, str] = {}
    for field, pattern in _PIN_NAMES.items():
        for name, pin in sorted(pins.items()):
            if pattern.match(name) and pin.specifier:
                fields[field] = _cuda_spec(name, pin.specifier) if field == "cuda" else pin.specifier
                break
    return Derived(
        python=python_range(minors) if minors else None,
        glibc=glibc_text(glibc) if glibc else None,
        pins=fields,
    )


class _Reader:
    """Memoises one refresh run's index reads (no cache survives the run)."""

    def __init__(self, index: WheelIndex) -> None:
        self.index = index
        self._meta: dict[tuple[str, str, str], tuple[str | None, list[Any]]] = {}
        self._releases: dict[str, dict[Version, dict[str, list[LinuxWheel]]]] = {}
        self._lock = threading.Lock()

    def releases(self, project: str) -> dict[Version, dict[str, list[LinuxWheel]]]:
        """Final releases -> platform ("linux-64", "linux-aarch64", or "any") -> wheels."""
        with self._lock:  # one page fetch per project even when threads ask at once
            if project not in self._releases:
                out: dict[Version, dict[str, list[LinuxWheel]]] = {}
                for file in self.index.project_files(project):
                    wheel = None if file.yanked else (linux_wheel(file) or _pure_wheel(file))
                    if wheel is None or wheel.version.is_prerelease or wheel.version.is_devrelease:
                        continue
                    out.setdefault(wheel.version, {}).setdefault(wheel.platform, []).append(wheel)
                self._releases[project] = out
            return self._releases[project]

    def facts(
        self, project: str, version: Version, platform: str, extras: tuple[str, ...], depth: int
    ) -> tuple[set[int] | None, tuple[int, int] | None, dict[str, Pin]] | None:
        by_platform = self.releases(project).get(version, {})
        wheels = by_platform.get(platform) or by_platform.get("any")
        if not wheels:
            return None
        requires_python, requirements = self._metadata(project, version, wheels)
        minors: set[int] | None = set().union(*(w.pythons for w in wheels)) or None
        if requires_python:
            allowed = _allowed(requires_python)
            minors = {m for m in (minors or set(range(6, 20))) if f"3.{m}" in allowed}
        glibc = max((w.glibc for w in wheels if w.platform != "any"), default=None)
        probe = f"3.{min(minors)}" if minors else "3.12"
        pins = active_pins(requirements, _MACHINE[platform], probe, extras)
        for name, pin in list(pins.items()):
            if name not in FOLLOW or depth >= 2:
                continue
            companion = self._newest(name, pin.specifier, platform)
            if companion is None:
                return None  # the build needs a companion wheel this platform does not have
            sub = self.facts(name, companion, platform, pin.extras, depth + 1)
            if sub is None:
                return None
            sub_minors, sub_glibc, sub_pins = sub
            if sub_minors is not None:
                minors = sub_minors if minors is None else minors & sub_minors
                if not minors:
                    return None  # no Python has wheels of both: not installable here
            if sub_glibc is not None:
                glibc = sub_glibc if glibc is None else max(glibc, sub_glibc)
            pins.update({k: v for k, v in sub_pins.items() if k not in pins})
        return minors, glibc, pins

    def _newest(self, project: str, specifier: str, platform: str) -> Version | None:
        allowed = _allowed(specifier)
        found = [
            v
            for v, plats in self.releases(project).items()
            if v in allowed and (platform in plats or "any" in plats)
        ]
        return max(found, default=None)

    def _metadata(
        self, project: str, version: Version, wheels: list[LinuxWheel]
    ) -> tuple[str | None, list[Any]]:
        key = (project, str(version), wheels[0].platform)
        if key not in self._meta:
            self._meta[key] = parse_metadata(self.index.wheel_metadata(wheels[0].file))
        return self._meta[key]


def _pure_wheel(file: IndexFile) -> LinuxWheel | None:
    if not file.filename.endswith("-none-any.whl"):
        return None
    try:
        version = Version(file.filename.split("-")[1])
    except (InvalidVersion, IndexError):
        return None
    return LinuxWheel(file, version, "any", (0, 0), frozenset())


def _allowed(specifier: str) -> SpecifierSet:
    try:
        return SpecifierSet(specifier, prereleases=False)
    except InvalidSpecifier:
        return SpecifierSet()


def _cuda_spec(name: str, specifier: str) -> str:
    """A runtime/toolkit pin -> a CUDA toolkit range: ``==12.4.127`` -> ``==12.4``."""
    spec = SpecifierSet(specifier)
    exact = [s for s in spec if s.operator == "=="]
    if exact:
        return "==" + ".".join(exact[0].version.split(".")[:2])
    lower = [s for s in spec if s.operator in (">=", "~=")]
    suffix = re.search(r"-cu(\d+)$", name)
    if not lower:
        return specifier
    low = Version(lower[0].version)
    major = int(suffix.group(1)) if suffix else low.major
    return f">={low.major}.{low.minor},<{major + 1}"


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


def _check_row(
    derived_by_task: dict[_Task, Derived | None],
    file: str,
    index: int,
    row: dict[str, Any],
    default_package: str,
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
            for field, committed, pypi in pairs:
                same = committed == pypi if field == "glibc" else _same(committed, pypi)
                if not same:
                    key = (platform, field, _text(committed), pypi)
                    found.setdefault(key, []).append(str(text))
    for (platform, field, committed, pypi), versions in found.items():
        yield DiffEntry(file, index, row_label(row), field, committed, pypi, tuple(versions), platform)


def _unlisted(reader: _Reader, file: str, package: str, rows: list[dict[str, Any]]) -> Iterable[DiffEntry]:
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
        platforms = sorted(listed) if set(plats) == {"any"} else sorted(set(plats) & set(_MACHINE))
        missing = [p for p in platforms if str(version) not in listed.get(p, set())]
        for platform in missing:
            if derive(reader, package, version, platform, ()) is None:
                continue  # published but not installable (e.g. tensorflow 2.11.1 on aarch64)
            field = "versions" if str(version) not in every else "platforms"
            yield DiffEntry(file, None, "(no row)", field, None, str(version), (str(version),), platform)


def _text(value: object) -> str | None:
    return None if value is None else str(value)
