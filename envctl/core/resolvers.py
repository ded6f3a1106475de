"""What `envctl lock` asks its resolvers, what they answer, and the seam they are reached through.

The lock service resolves each platform twice over: the PyPI side (uv in ``adapters/uv``) and
the conda side (rattler in ``adapters/rattler``). It holds them only as the Protocols below, so
its tests swap in resolvers that answer from a table, without a network or a subprocess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from envctl.core.solution import IndexPin


@dataclass(frozen=True)
class PipRequest:
    """One platform's PyPI-side resolution, fully specified."""

    requirements: tuple[str, ...]
    python_version: str
    python_platform: str
    exclude_newer: str | None = None  # RFC 3339; None when offline (a wheelhouse has no dates)
    exclude_newer_packages: tuple[tuple[str, str], ...] = ()
    pins: tuple[IndexPin, ...] = ()
    index_url: str | None = None  # default index; None: the resolver's default (PyPI)
    find_links: tuple[str, ...] = ()
    offline: bool = False
    label: str = ""  # platform name, for messages
    constraints: tuple[str, ...] = ()  # versions only, never extra packages


@dataclass(frozen=True)
class PinnedWheel:
    """One resolved distribution file."""

    name: str
    version: str
    url: str
    sha256: str | None
    dependencies: tuple[str, ...]
    index: str | None


@dataclass(frozen=True)
class CondaRequest:
    """One platform's conda-side solve."""

    platform: str  # conda subdir, "linux-64"
    channels: tuple[str, ...]  # URLs (file:// allowed) or names
    specs: tuple[str, ...]
    virtual_packages: Mapping[str, str]  # "__cuda" -> "12.4"; "__archspec" -> "x86_64" (build)
    exclude_newer: datetime | None = None
    offline: bool = False


@dataclass(frozen=True)
class PinnedCondaPackage:
    """One resolved conda package file."""

    name: str
    version: str
    build: str
    subdir: str
    url: str
    md5: str
    sha256: str | None
    depends: tuple[str, ...]


class PipResolver(Protocol):
    """Resolves PyPI requirements for one target into pinned files (uv)."""

    def resolve(self, request: PipRequest) -> tuple[PinnedWheel, ...]:
        """Every pinned file of the closure, sorted by name; ResolveError when there is none."""
        ...


class CondaSolver(Protocol):
    """Solves conda specs for one target into pinned packages (rattler)."""

    def solve(self, request: CondaRequest) -> tuple[PinnedCondaPackage, ...]:
        """Every pinned package, sorted by name; ResolveError when the specs are unsatisfiable."""
        ...


@dataclass(frozen=True)
class Resolvers:
    """The two resolvers a lock is made with."""

    pip: PipResolver
    conda: CondaSolver
