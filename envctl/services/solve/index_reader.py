"""What a package index says about one framework release on one platform, for ``matrix refresh``.

For a (project, release, platform, extras) the reader finds the wheels, reads one wheel's core
metadata and derives the matrix's PyPI-readable columns: the Python range (CPython tags
intersected with Requires-Python), the glibc floor (manylinux tag) and the CUDA / cuDNN / NCCL /
cuBLAS pins (Requires-Dist with the row's extras, following jaxlib and the JAX CUDA plugins one
hop). Reads are memoised for one run and overlap on a few threads.
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from envctl.core.wheel_facts import (
    IndexFile,
    LinuxWheel,
    Pin,
    active_pins,
    glibc_text,
    linux_wheel,
    parse_metadata,
    pure_wheel,
    python_range,
    runtime_release,
    toolkit_range,
)

#: binary companions whose wheels decide Python, glibc and CUDA pins of a pure-Python framework
FOLLOW = frozenset(
    {
        "jaxlib", "jax-cuda12-plugin", "jax-cuda13-plugin", "jax-cuda12-pjrt", "jax-cuda13-pjrt",
        "tensorflow-cpu-aws",  # what `tensorflow` <= 2.15 really installs on aarch64
        "tensorrt",  # tensorflow[and-cuda] 2.14 pins tensorrt 8.5.3.1, which has wheels for <= cp310 only
    }
)  # fmt: skip
PIN_FIELDS = ("cuda", "cudnn", "nccl", "cublas")
_PIN_NAMES = {
    "cudnn": re.compile(r"nvidia-cudnn(-cu\d+)?"),
    "nccl": re.compile(r"nvidia-nccl(-cu\d+)?"),
    "cublas": re.compile(r"nvidia-cublas(-cu\d+)?"),
}
MACHINES = {"linux-64": "x86_64", "linux-aarch64": "aarch64"}  # conda subdir -> wheel machine
_WORKERS = 8

#: one index lookup: (project, release, platform, extras)
Lookup = tuple[str, Version, str, tuple[str, ...]]


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
    runtime: str | None = None  # "cudart:12.8.90" or "toolkit:13.0.2": an exact runtime pin


def derive_all(reader: IndexReader, task_lists: list[list[Lookup]]) -> dict[Lookup, Derived | None]:
    """Derive every lookup at once (duplicates once); index reads overlap on a few threads."""
    tasks = list(dict.fromkeys(t for ts in task_lists for t in ts))
    for project in sorted({t[0] for t in tasks}):
        reader.releases(project)  # one page fetch per project, before the threads start
    with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
        results = list(pool.map(lambda t: derive(reader, *t), tasks))
    return dict(zip(tasks, results, strict=True))


def derive(
    reader: IndexReader, project: str, version: Version, platform: str, extras: tuple[str, ...]
) -> Derived | None:
    """Read one release's columns off the index; None when it has no wheel for ``platform``."""
    facts = reader.facts(project, version, platform, extras, depth=0)
    if facts is None:
        return None
    minors, glibc, pins = facts
    fields: dict[str, str] = {}
    specs = {name: pin.specifier for name, pin in pins.items()}
    cuda = toolkit_range(specs)  # every toolkit-versioned wheel bounds it (jax: the nvcc floor)
    if cuda is not None:
        fields["cuda"] = cuda
    for field, pattern in _PIN_NAMES.items():
        for name, pin in sorted(pins.items()):
            if pattern.fullmatch(name) and pin.specifier:
                fields[field] = pin.specifier
                break
    return Derived(
        python=python_range(minors) if minors else None,
        glibc=glibc_text(glibc) if glibc else None,
        pins=fields,
        runtime=runtime_release(specs),
    )


class IndexReader:
    """An index's releases and metadata, memoised for one refresh run (no cache survives it)."""

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
                    wheel = None if file.yanked else (linux_wheel(file) or pure_wheel(file))
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
        pins = active_pins(requirements, MACHINES[platform], probe, extras)
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


def _allowed(specifier: str) -> SpecifierSet:
    try:
        return SpecifierSet(specifier, prereleases=False)
    except InvalidSpecifier:
        return SpecifierSet()
