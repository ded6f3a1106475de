"""One disagreement between the committed matrix and an index, as `matrix refresh` reports it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DiffEntry:
    """One disagreement between the committed matrix and the index."""

    file: str  # "torch.toml"
    row: int | None  # index into [[build]]; None for releases no row lists
    label: str  # "2.5.0..2.5.1 cu124 pypi linux-64"
    field: str  # "python", "glibc", "cuda", "cudnn", "nccl", "cublas", "platforms", "versions"
    committed: str | None
    pypi: str | None
    versions: tuple[str, ...]
    platform: str | None


def row_label(row: dict[str, Any]) -> str:
    """A short name for a [[build]] row in reports: ``2.5.0..2.5.1 cu124 pypi``."""
    versions = [str(v) for v in row.get("versions", [])]
    span = versions[0] if len(versions) == 1 else f"{versions[0]}..{versions[-1]}"
    return f"{span} {row.get('variant')} {row.get('index', 'pypi')}" if versions else "(empty)"
